"""The catalog's estimate of what an upstream charges, by the sale price's rules."""

from __future__ import annotations

from decimal import Decimal

from vidgate.catalog.models import ModelSpec, PriceRule, RouteSpec
from vidgate.catalog.pricing import upstream_cost
from vidgate.domain.request import GenerationRequest


def _spec(*routes: RouteSpec) -> ModelSpec:
    return ModelSpec(
        id="m",
        name="m",
        namespace="native",
        label="M",
        vendor="V",
        durations=(4, 5, 8, 10),
        default_duration=5,
        audio="optional",
        price=PriceRule(rule="per_second", amount=Decimal("0.20")),
        routes=routes,
    )


def _req(**kw: object) -> GenerationRequest:
    return GenerationRequest.model_validate({"model": "m", "prompt": "a cat", **kw})


def test_per_second_cost_is_priced_for_the_clip_the_upstream_makes() -> None:
    route = RouteSpec(
        provider="kling",
        model="k",
        durations=(5, 10),
        cost=PriceRule(rule="per_second", amount=Decimal("0.07"), source="published"),
    )
    spec = _spec(route)
    assert upstream_cost(spec, route, _req(duration_s=5)).micros == 350_000  # type: ignore[union-attr]
    # 8 s ordered: Kling makes 10 s, and bills the 10 s it made.
    assert upstream_cost(spec, route, _req(duration_s=8)).micros == 700_000  # type: ignore[union-attr]


def test_credit_costs_keep_the_upstreams_units() -> None:
    route = RouteSpec(
        provider="runway",
        model="gen4_turbo",
        cost=PriceRule(
            rule="per_second",
            amount=Decimal("5"),
            unit="credit",
            credit_usd=Decimal("0.01"),
            source="published",
        ),
    )
    cost = upstream_cost(_spec(route), route, _req(duration_s=10))
    assert cost is not None
    assert (cost.micros, cost.units, cost.source) == (500_000, "50 credits", "published")


def test_variant_costs_and_a_route_without_a_cost() -> None:
    priced = RouteSpec(
        provider="fal",
        model="f",
        cost=PriceRule(
            rule="per_second",
            variant_by=("audio",),
            variants={"audio": Decimal("0.40"), "silent": Decimal("0.20")},
            source="inferred",
        ),
    )
    bare = RouteSpec(provider="replicate", model="r")
    spec = _spec(priced, bare)
    assert upstream_cost(spec, priced, _req(duration_s=4, audio=True)).micros == 1_600_000  # type: ignore[union-attr]
    assert upstream_cost(spec, priced, _req(duration_s=4, audio=False)).micros == 800_000  # type: ignore[union-attr]
    assert upstream_cost(spec, bare, _req()) is None
