"""Every route the catalog can send a job to states what its upstream charges, and says where
the figure comes from; the price lists fill routes without overriding one that has its own."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from vidgate.catalog.loader import Catalog, load_catalog
from vidgate.catalog.pricing import upstream_cost
from vidgate.catalog.upstream_prices import PriceListError, _read, with_costs
from vidgate.domain.request import GenerationRequest

# A published price names the page it was read from: a host with a path.
PAGE = re.compile(r"\b[a-z0-9.-]+\.(ai|com|io|dev|org)/\S+")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_every_route_of_every_orderable_model_has_an_upstream_cost(catalog: Catalog) -> None:
    missing = [
        f"{spec.id} -> {route.provider}:{route.model}"
        for spec in catalog
        if spec.orderable
        for route in spec.routes
        if route.cost is None
    ]
    assert missing == []


def test_upstream_costs_say_where_they_come_from(catalog: Catalog) -> None:
    for spec in catalog:
        for route in spec.routes:
            cost = route.cost
            where = f"{spec.id} -> {route.provider}:{route.model}"
            if cost is None:
                continue
            assert cost.source in ("published", "inferred"), where
            assert cost.cite.strip(), f"{where}: a cost cites its page or what it was inferred from"
            if cost.source == "published":
                assert PAGE.search(cost.cite), f"{where}: a published cost names the page: {cost.cite!r}"


def test_providers_that_publish_prices_have_published_costs(catalog: Catalog) -> None:
    published = {
        route.provider
        for spec in catalog
        for route in spec.routes
        if route.cost is not None and route.cost.source == "published"
    }
    assert {"fal", "minimax", "gemini", "vertex", "openai", "runway"} <= published


def test_a_route_fixed_to_a_mode_is_priced_in_that_mode(catalog: Catalog) -> None:
    # Kyma's Kling 3.0 Pro goes to Kling's own API asking for mode "pro", silent: 5 s at the pro rate.
    spec = catalog.get("kling-3-pro")
    route = spec.routes[0]
    assert route.provider == "kling" and route.params == {"mode": "pro"} and route.cost is not None
    req = GenerationRequest(model=spec.id, prompt="p", duration_s=5)
    cost = upstream_cost(spec, route, req)
    assert cost is not None and cost.micros == int(route.cost.variants["pro+silent"] * 5 * 1_000_000)


def test_token_priced_routes_keep_the_upstreams_units(catalog: Catalog) -> None:
    spec = catalog.get("seedance-2-pro")
    ark = spec.routes[0]
    assert ark.provider == "ark" and ark.cost is not None and ark.cost.unit_name == "tokens"
    cost = upstream_cost(spec, ark, GenerationRequest(model=spec.id, prompt="p", duration_s=5))
    assert cost is not None and cost.units is not None and cost.units.endswith(" tokens")
    tokens = Decimal(cost.units.split()[0])
    assert cost.micros == int(tokens * ark.cost.credit_usd * 1_000_000)


def test_a_routes_own_cost_wins_over_the_price_list() -> None:
    prices = {("fal", "m"): {"rule": "flat", "amount": "1"}}
    own = {"provider": "fal", "model": "m", "cost": {"rule": "flat", "amount": "2"}}
    bare = {"provider": "fal", "model": "m"}
    other = {"provider": "fal", "model": "n"}
    filled = with_costs({"routes": [own, bare, other]}, prices)
    assert [r.get("cost") for r in filled["routes"]] == [own["cost"], prices[("fal", "m")], None]


def test_a_price_list_names_its_mistakes() -> None:
    with pytest.raises(PriceListError, match=r"bad\.toml"):
        _read(
            "bad.toml", 'provider = "fal"\n[[price]]\nmodels = []\ncost = { rule = "flat", amount = "1" }\n'
        )
    with pytest.raises(PriceListError, match="provider"):
        _read("bad.toml", '[[price]]\nmodels = ["m"]\n')
