"""Routes' ``durations``: the clip lengths an upstream makes, and how the worker fits a request to them."""

from __future__ import annotations

import pytest

from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec, RouteSpec
from vidgate.providers.base import Route


def _route(spec: RouteSpec) -> Route:
    return Route(
        provider=spec.provider,
        model=spec.model,
        image_model=spec.image_model,
        params=spec.params,
        durations=spec.durations,
    )


def _routes_with_durations(catalog: Catalog) -> list[tuple[ModelSpec, RouteSpec]]:
    return [(spec, route) for spec in catalog for route in spec.routes if route.durations]


def _route_of(catalog: Catalog, model_id: str, provider: str) -> Route:
    routes = [r for r in catalog.get(model_id).routes if r.provider == provider]
    assert len(routes) == 1, f"{model_id} has {len(routes)} {provider} routes"
    return _route(routes[0])


def test_some_routes_carry_durations(catalog: Catalog) -> None:
    assert _routes_with_durations(catalog)


def test_route_durations_are_positive_sorted_and_unique(catalog: Catalog) -> None:
    for spec in catalog:
        for route in spec.routes:
            where = f"{spec.id} -> {route.provider}:{route.model}"
            assert all(isinstance(d, int) and d > 0 for d in route.durations), where
            assert list(route.durations) == sorted(set(route.durations)), where


def test_route_durations_are_left_out_when_the_upstream_makes_every_sold_length(catalog: Catalog) -> None:
    for spec, route in _routes_with_durations(catalog):
        assert not set(spec.durations) <= set(route.durations), (
            f"{spec.id} -> {route.provider}:{route.model}: durations add nothing, leave them out"
        )


def test_every_sold_duration_up_to_a_routes_maximum_fits_it(catalog: Catalog) -> None:
    for spec, route_spec in _routes_with_durations(catalog):
        if not spec.orderable:
            continue
        route = _route(route_spec)
        top = max(route.durations)
        for duration in spec.durations:
            fitted = route.fit_duration(duration)
            where = f"{spec.id} {duration} s -> {route.provider}:{route.model}"
            if duration <= top:
                assert fitted is not None, where
                assert fitted in route.durations and fitted >= duration, where
            else:
                assert fitted is None, where


@pytest.mark.parametrize(
    ("model_id", "provider", "requested", "asked"),
    [
        # Thalam sells 1-30 s; Kling's API makes 3-15 s of Kling 3.0.
        ("kuaishou/kling-v3.0-pro-t2v", "kling", 7, 7),
        ("kuaishou/kling-v3.0-pro-t2v", "kling", 1, 3),
        ("kuaishou/kling-v3.0-pro-t2v", "kling", 15, 15),
        ("kuaishou/kling-v3.0-pro-t2v", "kling", 16, None),
        ("kling-3-pro", "kling", 7, 7),
        # Kling 2.5 on Kling's API makes 5 or 10.
        ("kling-2.5-pro", "kling", 7, 10),
        ("kling-2.5-pro", "kling", 1, 5),
        ("alibaba/wan2.6-t2v", "dashscope", 12, 15),
        ("alibaba/wan-2.5-t2v-preview", "dashscope", 11, None),
        # Kyma sells 1-10 s; MiniMax makes 6 or 10, and 1080p only 6.
        ("hailuo-02-768p", "minimax", 3, 6),
        ("hailuo-02-768p", "minimax", 7, 10),
        ("hailuo-02-1080p", "minimax", 6, 6),
        ("hailuo-02-1080p", "minimax", 7, None),
        ("kyma/veo-3", "vertex", 5, 6),
        ("kyma/veo-3", "vertex", 9, None),
        ("kyma/seedance-2-fast", "ark", 2, 4),
        # Apiframe's Sora 2 sells 10 and 15 s; the Videos API makes 4, 8 or 12.
        ("sora-2", "openai", 10, 12),
        ("sora-2", "openai", 15, None),
    ],
)
def test_a_request_is_fitted_to_the_route(
    catalog: Catalog, model_id: str, provider: str, requested: int, asked: int | None
) -> None:
    assert requested in catalog.get(model_id).durations
    assert _route_of(catalog, model_id, provider).fit_duration(requested) == asked


def test_routes_whose_upstream_makes_every_sold_length_pass_it_through(catalog: Catalog) -> None:
    assert _route_of(catalog, "kling-3.0", "kling").fit_duration(3) == 3
    route = _route_of(catalog, "kling-2.6", "kling")
    assert route.durations == ()
    assert route.fit_duration(10) == 10
    assert _route_of(catalog, "tencent/hunyuan-video-fast", "fal").fit_duration(5) == 5
