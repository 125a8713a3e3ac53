"""Which route a job tries first: a model's route settings and the policies that order them.

A model's routes are catalog data (``ModelSpec.routes``). At run time an operator may
reorder them, enable or disable each one, change their weights and pick the policy
(``RouteConfig``, kept in the ``route_config`` table); nothing else changes, so the
settings name exactly the catalog's routes, each once (``validated``).

Policies (``plan``), always over the enabled routes only:

* ``ordered``: in the configured order (the catalog's, unless an operator changed it);
* ``weighted``: the first route is drawn by weight among the routes that can take the
  job now, the others follow in the configured order as failover. The draw is seeded
  by the job id, so a job retried later draws the same route while it stays usable,
  and tests are reproducible. Weight 0 keeps a route for failover only;
* ``cheapest``: ascending upstream cost (the catalog's estimate for this very
  request, ``pricing.upstream_cost``); routes without a stated cost come last, in the
  configured order among equals.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from vidgate.catalog.models import ModelSpec, RouteSpec, RoutingPolicy
from vidgate.catalog.pricing import upstream_cost
from vidgate.domain.request import GenerationRequest
from vidgate.errors import GatewayError, InvalidRequest

POLICIES: tuple[str, ...] = get_args(RoutingPolicy)
MAX_WEIGHT = 1_000_000


@dataclass(frozen=True, slots=True)
class RouteSetting:
    """What an operator may change about one catalog route."""

    provider: str
    model: str
    enabled: bool = True
    weight: int = 1

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.model)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "enabled": self.enabled,
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A model's routing: the policy and its routes in order."""

    policy: RoutingPolicy
    routes: tuple[RouteSetting, ...]

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "routes": [r.to_json() for r in self.routes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteConfig:
        """Read a stored or submitted config; ``InvalidRequest`` names what is wrong with its shape."""
        policy = data.get("policy")
        if policy not in POLICIES:
            raise InvalidRequest(f"policy must be one of {', '.join(POLICIES)}", param="policy")
        routes = data.get("routes")
        if not isinstance(routes, list):
            raise InvalidRequest("routes must be a list", param="routes")
        return cls(policy, tuple(_setting(item, n) for n, item in enumerate(routes)))


def _setting(item: object, n: int) -> RouteSetting:
    where = f"routes[{n}]"
    if not isinstance(item, Mapping):
        raise InvalidRequest(f"{where} must be an object", param="routes")
    provider, model = item.get("provider"), item.get("model")
    enabled, weight = item.get("enabled", True), item.get("weight", 1)
    if not isinstance(provider, str) or not isinstance(model, str):
        raise InvalidRequest(f"{where} needs a provider and a model (strings)", param="routes")
    if not isinstance(enabled, bool):
        raise InvalidRequest(f"{where}.enabled must be true or false", param="routes")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise InvalidRequest(f"{where}.weight must be a whole number 0..{MAX_WEIGHT}", param="routes")
    return RouteSetting(provider, model, enabled, weight)


def catalog_config(spec: ModelSpec) -> RouteConfig:
    """The routing the catalog gives ``spec``: its routes in order, all enabled."""
    return RouteConfig(
        spec.routing, tuple(RouteSetting(r.provider, r.model, True, r.weight) for r in spec.routes)
    )


def validated(spec: ModelSpec, config: RouteConfig) -> RouteConfig:
    """``config`` when it names exactly ``spec``'s catalog routes, each once; else ``InvalidRequest``."""
    known = {r.key for r in spec.routes}
    seen: set[tuple[str, str]] = set()
    for setting in config.routes:
        if setting.key not in known:
            raise InvalidRequest(
                f"{spec.id} has no route {setting.provider}/{setting.model}; its routes are "
                + (", ".join(f"{p}/{m}" for p, m in sorted(known)) or "none"),
                param="routes",
            )
        if setting.key in seen:
            raise InvalidRequest(f"route {setting.provider}/{setting.model} is listed twice", param="routes")
        seen.add(setting.key)
    missing = known - seen
    if missing:
        raise InvalidRequest(
            "list every route of the model (disable one rather than leave it out); missing: "
            + ", ".join(f"{p}/{m}" for p, m in sorted(missing)),
            param="routes",
        )
    return config


def merged(spec: ModelSpec, stored: RouteConfig | None) -> RouteConfig:
    """The settings in force: ``stored`` where it still matches the catalog.

    A catalog that changed since the settings were saved (a route added or removed by
    an upgrade) keeps the stored order and settings of the routes it still has; new
    routes follow with the catalog's defaults.
    """
    if stored is None:
        return catalog_config(spec)
    known = {r.key for r in spec.routes}
    kept = [s for s in stored.routes if s.key in known]
    kept_keys = {s.key for s in kept}
    added = [RouteSetting(r.provider, r.model, True, r.weight) for r in spec.routes if r.key not in kept_keys]
    return RouteConfig(stored.policy, tuple(kept + added))


@dataclass(frozen=True, slots=True)
class PlannedRoute:
    """A route in the order a job tries them; ``index`` is its place in the catalog."""

    index: int
    spec: RouteSpec


@dataclass(frozen=True, slots=True)
class _Ask:
    """What a policy may look at besides the enabled routes."""

    spec: ModelSpec
    req: GenerationRequest
    seed: str
    weights: Mapping[tuple[str, str], int]
    usable: Callable[[RouteSpec], bool]


def plan(
    spec: ModelSpec,
    config: RouteConfig,
    req: GenerationRequest,
    *,
    seed: str,
    usable: Callable[[RouteSpec], bool] = lambda _route: True,
) -> list[PlannedRoute]:
    """The enabled routes of ``spec`` in the order ``config``'s policy tries them for ``req``.

    ``seed``: the job id (the weighted draw); ``usable``: whether a route can be called
    now (configured, its circuit not open), so a weighted draw never lands on one that
    cannot take the job.
    """
    index = {r.key: n for n, r in enumerate(spec.routes)}
    enabled = [
        PlannedRoute(index[s.key], spec.routes[index[s.key]])
        for s in config.routes
        if s.enabled and s.key in index
    ]
    ask = _Ask(spec, req, seed, {s.key: s.weight for s in config.routes}, usable)
    return _ORDER[config.policy](enabled, ask)


def _ordered(routes: Sequence[PlannedRoute], _ask: _Ask) -> list[PlannedRoute]:
    return list(routes)


def _weighted(routes: Sequence[PlannedRoute], ask: _Ask) -> list[PlannedRoute]:
    candidates = [(p, ask.weights.get(p.spec.key, 0)) for p in routes if ask.usable(p.spec)]
    candidates = [(p, w) for p, w in candidates if w > 0]
    if not candidates:
        return list(routes)
    point = random.Random(f"{ask.seed}:{ask.spec.id}").randrange(sum(w for _, w in candidates))
    chosen = candidates[-1][0]
    for candidate, weight in candidates:
        if point < weight:
            chosen = candidate
            break
        point -= weight
    return [chosen] + [p for p in routes if p is not chosen]


def _cheapest(routes: Sequence[PlannedRoute], ask: _Ask) -> list[PlannedRoute]:
    def cost(planned: PlannedRoute) -> tuple[int, int]:
        estimate = None
        with contextlib.suppress(GatewayError):  # no price for this combination: unknown cost
            estimate = upstream_cost(ask.spec, planned.spec, ask.req)
        return (0, estimate.micros) if estimate is not None else (1, 0)

    return sorted(routes, key=cost)  # stable: configured order among equals


_ORDER: Mapping[str, Callable[[Sequence[PlannedRoute], _Ask], list[PlannedRoute]]] = {
    "ordered": _ordered,
    "weighted": _weighted,
    "cheapest": _cheapest,
}
