"""Route policies (ordered, weighted, cheapest) and the validation of route settings."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from vidgate.catalog.models import ModelSpec, PriceRule, RouteSpec
from vidgate.catalog.price_text import rule_text
from vidgate.catalog.routing import (
    RouteConfig,
    RouteSetting,
    catalog_config,
    merged,
    plan,
    validated,
)
from vidgate.domain.request import GenerationRequest
from vidgate.errors import InvalidRequest


def _cost(amount: str) -> PriceRule:
    return PriceRule(rule="per_second", amount=Decimal(amount), source="published")


A = RouteSpec(provider="kling", model="kling-v3", weight=3)
B = RouteSpec(provider="fal", model="fal-ai/kling", weight=1)
C = RouteSpec(provider="replicate", model="kwai/kling", weight=0)


def _spec(*routes: RouteSpec, routing: str = "ordered") -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "id": "m",
            "name": "m",
            "namespace": "native",
            "label": "M",
            "vendor": "V",
            "durations": (5, 10),
            "default_duration": 5,
            "price": PriceRule(rule="per_second", amount=Decimal("0.20")),
            "routes": routes,
            "routing": routing,
        }
    )


REQ = GenerationRequest.model_validate({"model": "m", "prompt": "a cat", "duration_s": 5})


def _providers(spec: ModelSpec, config: RouteConfig, seed: str = "job", **kw: object) -> list[str]:
    return [p.spec.provider for p in plan(spec, config, REQ, seed=seed, **kw)]  # type: ignore[arg-type]


def test_ordered_keeps_the_configured_order_and_leaves_disabled_routes_out() -> None:
    spec = _spec(A, B, C)
    assert _providers(spec, catalog_config(spec)) == ["kling", "fal", "replicate"]
    config = RouteConfig(
        "ordered",
        (
            RouteSetting("replicate", "kwai/kling"),
            RouteSetting("kling", "kling-v3", enabled=False),
            RouteSetting("fal", "fal-ai/kling"),
        ),
    )
    planned = plan(spec, config, REQ, seed="job")
    assert [p.spec.provider for p in planned] == ["replicate", "fal"]
    assert [p.index for p in planned] == [2, 1]  # each route keeps its catalog index


def test_weighted_spreads_jobs_by_weight_and_is_stable_per_job() -> None:
    spec = _spec(A, B, C, routing="weighted")
    config = catalog_config(spec)
    assert config.policy == "weighted"
    firsts = Counter(_providers(spec, config, seed=f"video_{n:04d}")[0] for n in range(2000))
    # 3:1:0 by weight; weight 0 is failover only
    assert firsts["replicate"] == 0
    assert 0.70 <= firsts["kling"] / 2000 <= 0.80 and 0.20 <= firsts["fal"] / 2000 <= 0.30
    # the same job draws the same route every time (a retry is stable)
    assert {tuple(_providers(spec, config, seed="video_0042")) for _ in range(20)} == {
        tuple(_providers(spec, config, seed="video_0042"))
    }
    # the rest follow in the configured order as failover
    for n in range(50):
        order = _providers(spec, config, seed=f"video_{n}")
        rest = [p for p in ["kling", "fal", "replicate"] if p != order[0]]
        assert order[1:] == rest


def test_weighted_draws_only_among_routes_that_can_take_the_job() -> None:
    spec = _spec(A, B, C, routing="weighted")
    config = catalog_config(spec)
    firsts = {
        _providers(spec, config, seed=f"j{n}", usable=lambda r: r.provider != "kling")[0] for n in range(200)
    }
    assert firsts == {"fal"}
    # nothing usable with a weight: the configured order
    assert _providers(spec, config, usable=lambda r: r.provider == "replicate") == [
        "kling",
        "fal",
        "replicate",
    ]


def test_weights_from_settings_override_the_catalog() -> None:
    spec = _spec(A, B, routing="weighted")
    config = RouteConfig(
        "weighted",
        (RouteSetting("kling", "kling-v3", weight=0), RouteSetting("fal", "fal-ai/kling", weight=5)),
    )
    assert {_providers(spec, config, seed=f"j{n}")[0] for n in range(100)} == {"fal"}


def test_cheapest_orders_by_the_upstream_cost_of_this_request() -> None:
    dear = RouteSpec(provider="kling", model="kling-v3", cost=_cost("0.14"))
    cheap = RouteSpec(provider="fal", model="fal-ai/kling", cost=_cost("0.07"))
    unknown = RouteSpec(provider="replicate", model="kwai/kling")
    # makes only 10 s clips: a 5 s order costs the 10 s it makes, 0.50
    long_only = RouteSpec(provider="luma", model="ray", durations=(10,), cost=_cost("0.05"))
    spec = _spec(unknown, dear, long_only, cheap, routing="cheapest")
    # fal 0.35, luma 0.50 (asked for 10 s), kling 0.70, replicate unknown (last)
    assert _providers(spec, catalog_config(spec)) == ["fal", "luma", "kling", "replicate"]
    ten = GenerationRequest.model_validate({"model": "m", "prompt": "a cat", "duration_s": 10})
    # for 10 s luma is cheapest (0.50 < fal 0.70 < kling 1.40)
    assert [p.spec.provider for p in plan(spec, catalog_config(spec), ten, seed="j")][:3] == [
        "luma",
        "fal",
        "kling",
    ]


def test_settings_must_name_exactly_the_catalog_routes() -> None:
    spec = _spec(A, B)
    with pytest.raises(InvalidRequest, match="no route acme/x"):
        validated(
            spec, RouteConfig("ordered", (RouteSetting("acme", "x"), RouteSetting("kling", "kling-v3")))
        )
    with pytest.raises(InvalidRequest, match="missing: fal/fal-ai/kling"):
        validated(spec, RouteConfig("ordered", (RouteSetting("kling", "kling-v3"),)))
    with pytest.raises(InvalidRequest, match="listed twice"):
        validated(
            spec,
            RouteConfig(
                "ordered",
                (
                    RouteSetting("kling", "kling-v3"),
                    RouteSetting("kling", "kling-v3"),
                    RouteSetting("fal", "fal-ai/kling"),
                ),
            ),
        )
    good = RouteConfig(
        "cheapest", (RouteSetting("fal", "fal-ai/kling"), RouteSetting("kling", "kling-v3", False, 2))
    )
    assert validated(spec, good) is good


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"policy": "fastest", "routes": []}, "policy must be one of"),
        ({"policy": "ordered", "routes": {}}, "routes must be a list"),
        ({"policy": "ordered", "routes": [{"provider": "fal"}]}, "needs a provider and a model"),
        ({"policy": "ordered", "routes": [{"provider": "fal", "model": "x", "weight": -1}]}, "weight"),
        ({"policy": "ordered", "routes": [{"provider": "fal", "model": "x", "enabled": "yes"}]}, "enabled"),
    ],
)
def test_stored_settings_of_the_wrong_shape_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        RouteConfig.from_json(data)


def test_settings_saved_before_a_catalog_change_keep_what_still_applies() -> None:
    spec = _spec(A, B, C)
    stored = RouteConfig(
        "weighted",
        (
            RouteSetting("fal", "fal-ai/kling", weight=4),
            RouteSetting("gone", "old", False),
            RouteSetting("kling", "kling-v3", False),
        ),
    )
    now = merged(spec, stored)
    assert now.policy == "weighted"
    assert [(s.provider, s.enabled, s.weight) for s in now.routes] == [
        ("fal", True, 4),
        ("kling", False, 1),
        ("replicate", True, 0),  # new in the catalog: its defaults, at the end
    ]
    assert merged(spec, None) == catalog_config(spec)


def test_a_route_listed_twice_in_the_catalog_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        _spec(A, A)


def test_cost_text() -> None:
    assert rule_text(_cost("0.07")) == "$0.07 per second"
    credits = PriceRule(
        rule="flat",
        variants={"5": Decimal("30"), "10": Decimal("60")},
        variant_by=("duration",),
        unit="credit",
    )
    assert rule_text(credits) == "$0.30–$0.60 per video (30–60 credits)"
