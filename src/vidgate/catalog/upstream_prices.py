"""Upstream price lists: what each upstream charges for each of its models.

One file per provider in ``vidgate/catalog/data/upstream/<provider>.toml``::

    provider = "fal"
    [[price]]
    models = ["fal-ai/veo3", "fal-ai/veo3/image-to-video"]   # the upstream's model ids
    cost = { rule = "per_second", variant_by = ["audio"], variants = { silent = "0.20", audio = "0.40" },
             source = "published", cite = "fal.ai/models/fal-ai/veo3 pricing, 2026-11" }

``cost`` is a ``PriceRule`` (the sale price's rules; ``source`` is ``published`` where
the provider publishes the price, with the page in ``cite``, and ``inferred``
otherwise, with what it was inferred from in ``cite``). The loader gives every
catalog route of that provider and model (``RouteSpec.model``) this cost unless the
route states its own ``cost``: one price per upstream model, however many catalog
entries sell it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

PriceKey = tuple[str, str]  # (provider, upstream model)
_FILE_KEYS = frozenset({"provider", "price"})


class PriceListError(ValueError):
    """A price list cannot be read; the message names the file and the entry."""


def packaged_prices() -> dict[PriceKey, dict[str, Any]]:
    """Every packaged upstream price, by (provider, upstream model), as raw cost tables."""
    folder = resources.files("vidgate.catalog").joinpath("data").joinpath("upstream")
    prices: dict[PriceKey, dict[str, Any]] = {}
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    for item in files:
        for key, cost in _read(item.name, item.read_text(encoding="utf-8")):
            if key in prices:
                raise PriceListError(f"{item.name}: {key[0]} model {key[1]!r} is priced twice")
            prices[key] = cost
    return prices


def _read(name: str, text: str) -> list[tuple[PriceKey, dict[str, Any]]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PriceListError(f"{name}: not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - _FILE_KEYS)
    provider = document.get("provider")
    if unknown or not isinstance(provider, str):
        raise PriceListError(f'{name}: expected provider = "..." and [[price]] tables only')
    result: list[tuple[PriceKey, dict[str, Any]]] = []
    for position, entry in enumerate(document.get("price", []), start=1):
        models, cost = entry.get("models"), entry.get("cost")
        if not isinstance(models, list) or not models or not isinstance(cost, dict):
            raise PriceListError(f"{name}: price #{position} needs models = [...] and cost = {{...}}")
        result.extend(((provider, str(model)), dict(cost)) for model in models)
    return result


def with_costs(raw: Mapping[str, Any], prices: Mapping[PriceKey, Mapping[str, Any]]) -> dict[str, Any]:
    """``raw`` (a catalog entry) with each route lacking a ``cost`` given its upstream's price."""
    entry = dict(raw)
    routes = entry.get("routes")
    if not isinstance(routes, list):
        return entry
    filled: list[Any] = []
    for route in routes:
        if isinstance(route, dict) and "cost" not in route:
            price = prices.get((str(route.get("provider")), str(route.get("model"))))
            if price is not None:
                route = {**route, "cost": dict(price)}
        filled.append(route)
    entry["routes"] = filled
    return entry
