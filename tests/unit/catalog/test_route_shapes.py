"""Routes' ``resolutions`` and ``aspect_ratios``: the shapes an upstream makes.

Every shape a model sells is made by at least one of its routes (the loader refuses a
catalog where one is not), so a request for a shape no upstream makes is a 400 at
validation, never a job that fails later or a differently shaped video.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgate.catalog.loader import Catalog, CatalogError, load_catalog
from vidgate.catalog.models import ModelSpec, RouteSpec
from vidgate.providers.base import Route
from vidgate.worker.providers import route_of

SEEDANCE = ("seedance-1-lite", "seedance-1-pro", "seedance-1-pro-fast", "seedance-1.5-pro", "seedance-2")
SEEDANCE_ALL = (*SEEDANCE, "apiframe/seedance-2-fast", "seedance-2-pro", "kyma/seedance-2-fast")
ARK_RATIOS = {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"}
ARK_RESOLUTIONS = {"480p", "720p", "1080p"}


def _route(catalog: Catalog, model_id: str, provider: str) -> RouteSpec:
    [route] = [r for r in catalog.get(model_id).routes if r.provider == provider]
    return route


def test_some_routes_carry_shapes(catalog: Catalog) -> None:
    assert any(route.resolutions for spec in catalog for route in spec.routes)
    assert any(route.aspect_ratios for spec in catalog for route in spec.routes)


def test_route_shapes_are_unique(catalog: Catalog) -> None:
    for spec in catalog:
        for route in spec.routes:
            where = f"{spec.id} -> {route.provider}:{route.model}"
            assert len(set(route.resolutions)) == len(route.resolutions), where
            assert len(set(route.aspect_ratios)) == len(route.aspect_ratios), where


def test_every_sold_shape_is_made_by_at_least_one_route(catalog: Catalog) -> None:
    for spec in catalog:
        if not spec.routes:
            continue
        for resolution in spec.resolutions:
            makers = [r.key for r in spec.routes if r.makes_resolution(resolution)]
            assert makers, f"{spec.id}: no route makes {resolution}"
            assert any(route_of(r).cannot_make(resolution, None) is None for r in spec.routes)
        for ratio in spec.aspect_ratios:
            makers = [r.key for r in spec.routes if r.makes_aspect_ratio(ratio)]
            assert makers, f"{spec.id}: no route makes {ratio}"


def test_the_loader_refuses_a_model_selling_a_shape_no_route_makes(tmp_path: Path) -> None:
    extra = tmp_path / "ops.toml"
    extra.write_text(
        '[[model]]\nid = "seedance-1-pro"\n'
        'aspect_ratios = ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "9:21"]\n'
    )
    with pytest.raises(CatalogError, match=r"seedance-1-pro.*no route makes the aspect ratio 9:21"):
        load_catalog(extra)
    extra.write_text('[[model]]\nid = "seedance-2"\nresolutions = ["480p", "720p", "1080p", "4k"]\n')
    with pytest.raises(CatalogError, match=r"seedance-2.*no route makes the resolution 4k"):
        load_catalog(extra)


def test_a_route_without_shapes_makes_whatever_the_model_sells() -> None:
    base = {"id": "m", "name": "m", "namespace": "native", "label": "m", "vendor": "v"}
    spec = ModelSpec.model_validate(
        {
            **base,
            "durations": [5],
            "default_duration": 5,
            "resolutions": ["720p", "4k"],
            "aspect_ratios": ["16:9", "9:21"],
            "price": {"rule": "flat", "amount": "1"},
            "routes": [
                {"provider": "a", "model": "a1", "resolutions": ["720p"], "aspect_ratios": ["16:9"]},
                {"provider": "b", "model": "b1"},
            ],
        }
    )
    assert route_of(spec.routes[1]).cannot_make("4k", "9:21") is None
    limited = route_of(spec.routes[0])
    assert limited.cannot_make("720p", "16:9") is None
    assert limited.cannot_make(None, None) is None
    assert limited.cannot_make("4k", "16:9") == "resolution 4k (a makes 720p)"
    assert limited.cannot_make("720p", "9:21") == "aspect ratio 9:21 (a makes 16:9)"


def test_route_of_carries_the_shapes(catalog: Catalog) -> None:
    spec = _route(catalog, "seedance-2", "fal")
    route = route_of(spec)
    assert isinstance(route, Route)
    assert route.resolutions == spec.resolutions == ("480p", "720p")
    assert route.aspect_ratios == spec.aspect_ratios


def test_apiframe_seedance_sells_no_frame_and_no_resolution_nobody_makes(catalog: Catalog) -> None:
    for model_id in (*SEEDANCE, "apiframe/seedance-2-fast"):
        spec = catalog.get(model_id)
        assert "9:21" not in spec.aspect_ratios, model_id
        assert set(spec.resolutions) <= ARK_RESOLUTIONS, model_id
    assert catalog.get("seedance-2").resolutions == ("480p", "720p", "1080p")
    assert "4k" not in (catalog.get("seedance-2").price.variants if catalog.get("seedance-2").price else {})


def test_seedance_routes_carry_the_upstreams_real_limits(catalog: Catalog) -> None:
    for model_id in SEEDANCE_ALL:
        for route in catalog.get(model_id).routes:
            where = f"{model_id} -> {route.provider}"
            assert route.aspect_ratios and route.resolutions, where
            assert set(route.aspect_ratios) <= ARK_RATIOS, where
            assert set(route.resolutions) <= ARK_RESOLUTIONS, where
    # Seedance 1.0 takes the six fixed frames; 1.5 and 2.0 also adaptive (fal: "auto").
    for model_id in ("seedance-1-lite", "seedance-1-pro", "seedance-1-pro-fast"):
        for provider in ("ark", "fal"):
            assert "adaptive" not in _route(catalog, model_id, provider).aspect_ratios
    assert "adaptive" in _route(catalog, "seedance-2", "fal").aspect_ratios
    # Seedance 2.0 makes 1080p on Ark but not on fal; 2.0 Fast 720p at most on both.
    assert "1080p" in _route(catalog, "seedance-2", "ark").resolutions
    assert _route(catalog, "seedance-2", "fal").resolutions == ("480p", "720p")
    for model_id in ("apiframe/seedance-2-fast", "kyma/seedance-2-fast"):
        for provider in ("ark", "fal"):
            assert _route(catalog, model_id, provider).resolutions == ("480p", "720p")


@pytest.mark.parametrize(
    ("model_id", "resolution", "aspect_ratio", "makers"),
    [
        ("seedance-2", "1080p", "16:9", ["ark"]),
        ("seedance-2", "720p", "adaptive", ["ark", "fal"]),
        ("seedance-2-pro", None, "adaptive", ["ark", "fal"]),
        ("seedance-1-pro", "1080p", "21:9", ["ark", "fal"]),
    ],
)
def test_which_routes_make_a_shape(
    catalog: Catalog, model_id: str, resolution: str | None, aspect_ratio: str, makers: list[str]
) -> None:
    routes = [route_of(r) for r in catalog.get(model_id).routes]
    assert [r.provider for r in routes if r.cannot_make(resolution, aspect_ratio) is None] == makers
