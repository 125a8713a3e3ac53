"""The set of configured upstreams: adapters built once per process from settings.

A provider is enabled when its API key (or key pool, ``API_KEYS``) is set (ComfyUI:
its base URL). Each key of a provider gets its own adapter (``worker.key_pool``);
a circuit breaker per key label pauses a key that keeps failing. Test-mode jobs
always go to the simulator; live jobs take the routes the model's routing plans
(``catalog.routing``), skipping providers that are not configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import httpx

from vidgate.catalog.models import ModelSpec, RouteSpec
from vidgate.catalog.routing import PlannedRoute, RouteConfig
from vidgate.config import Settings, provider_settings
from vidgate.net.urlguard import UrlGuard, pinned_client
from vidgate.providers.base import ProviderAdapter, ProviderContext, Route
from vidgate.providers.registry import PROVIDERS, adapter_factory
from vidgate.providers.simulator import SIMULATOR_ROUTE
from vidgate.worker.breaker import CircuitBreaker
from vidgate.worker.key_pool import KeyPool, PoolKey, key_settings

log = logging.getLogger(__name__)

SUBMIT_TIMEOUT_S = 120.0  # creating an upstream job may take longer than a poll


class ProviderPool:
    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        env: Mapping[str, str] | None = None,
        breaker: CircuitBreaker | None = None,
        guard: UrlGuard | None = None,
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        # One client for URLs a user chose (input images), every hop checked by the guard.
        self.user_http = pinned_client(guard, follow_redirects=True) if guard is not None else None
        self._pools: dict[str, KeyPool] = {}
        callback_base = settings.public_url.rstrip("/") if settings.public_url else None
        for name, info in PROVIDERS.items():
            config = provider_settings(name, dict(env) if env is not None else None, file=settings.config)
            if name == "simulator":
                config.setdefault("latency_s", str(settings.simulator_latency_s))
            elif not any(config.get(setting) or config.get(f"{setting}s") for setting in info.enabled_by):
                continue
            keys: list[PoolKey] = []
            for label, values in key_settings(name, config):
                ctx = ProviderContext(
                    http=http,
                    api_key=values.pop("api_key", None),
                    base_url=values.pop("base_url", info.default_base_url).rstrip("/"),
                    options=values,
                    callback_url=f"{callback_base}/callbacks/{name}" if callback_base else None,
                    timeout_s=settings.upstream_timeout_s,
                    submit_timeout_s=settings.upstream_submit_timeout_s,
                    user_http=self.user_http,
                )
                try:
                    keys.append(PoolKey(label, adapter_factory(name)(ctx), ctx))
                except (ImportError, AttributeError) as exc:  # a provider module missing its extra
                    log.warning("provider %s is configured but could not be loaded: %s", name, exc)
                    break
            else:
                self._pools[name] = KeyPool(name, keys)
                if len(keys) > 1:
                    log.info(
                        "provider %s: a pool of %d keys (%s)",
                        name,
                        len(keys),
                        ", ".join(k.label for k in keys),
                    )

    def install(self, name: str, adapter: ProviderAdapter, ctx: ProviderContext | None = None) -> None:
        """Put an adapter in place of (or beside) the configured ones (tools, tests, benchmarks)."""
        ctx = ctx if ctx is not None else self.context(name)
        self._pools[name] = KeyPool(name, [PoolKey(name, adapter, ctx)])

    def install_keys(self, name: str, keys: Sequence[PoolKey]) -> KeyPool:
        """Put a key pool in place of the provider's configured keys (tests, tools)."""
        self._pools[name] = KeyPool(name, list(keys))
        return self._pools[name]

    @property
    def enabled(self) -> list[str]:
        return sorted(n for n in self._pools if n != "simulator")

    def adapter(self, name: str) -> ProviderAdapter | None:
        """The provider's adapter (its first key's, for calls that any key may make)."""
        pool = self._pools.get(name)
        return pool.first.adapter if pool else None

    def adapter_for(self, name: str | None, key: str | None) -> ProviderAdapter | None:
        """The adapter of the key that owns a job's upstream work (``jobs.upstream_key``)."""
        pool = self._pools.get(name or "")
        return pool.get(key).adapter if pool else None

    def keys(self, name: str) -> KeyPool | None:
        """The provider's key pool; None when it is not configured."""
        return self._pools.get(name)

    def usable(self, name: str) -> bool:
        """Whether the provider is configured and some key of it may be called now."""
        pool = self._pools.get(name)
        return pool is not None and pool.usable(self.breaker)

    def context(self, name: str) -> ProviderContext | None:
        """The settings an enabled provider was built with (its first key; never exposed over HTTP)."""
        pool = self._pools.get(name)
        return pool.first.ctx if pool else None

    def call_timeout(self, name: str) -> float:
        """The worker's outer limit on a poll, cancel or find: the provider's own limit plus a margin."""
        ctx = self.context(name)
        return (ctx.timeout_s if ctx else 30.0) + 5.0

    def submit_timeout(self, name: str) -> float:
        """The worker's outer limit on one submit (longer than a poll), plus a margin."""
        ctx = self.context(name)
        return (ctx.submit_timeout_s if ctx else SUBMIT_TIMEOUT_S) + 5.0

    async def aclose(self) -> None:
        """Close the client the pool owns (the user-URL client); the shared one is the caller's."""
        if self.user_http is not None:
            await self.user_http.aclose()

    def routes_for(
        self, spec: ModelSpec, mode: str, planned: Sequence[PlannedRoute] | None = None
    ) -> list[tuple[int, Route]]:
        """The routes a job may take, in order, each with its index in the catalog.

        ``planned``: the routing's order (``catalog.routing.plan``); the catalog's when
        None. Circuit state is checked at submit time.
        """
        if mode == "test":
            if spec.outputs > 1:  # e.g. midjourney-video's four takes
                return [
                    (
                        0,
                        Route(
                            SIMULATOR_ROUTE.provider, SIMULATOR_ROUTE.model, params={"outputs": spec.outputs}
                        ),
                    )
                ]
            return [(0, SIMULATOR_ROUTE)]
        if planned is None:
            planned = [PlannedRoute(n, r) for n, r in enumerate(spec.routes)]
        return [(p.index, route_of(p.spec)) for p in planned if p.spec.provider in self._pools]

    def unavailable_reason(self, spec: ModelSpec, config: RouteConfig | None = None) -> str | None:
        """None when a live job for ``spec`` has an upstream; otherwise why not.

        ``config``: the model's route settings, whose disabled routes do not count.
        """
        if not spec.routes:
            return "no upstream provider is known to serve this model"
        routes = list(spec.routes)
        if config is not None:
            enabled = {s.key for s in config.routes if s.enabled}
            routes = [r for r in routes if r.key in enabled]
            if not routes:
                return "every route of this model is disabled by the operator"
        if any(r.provider in self._pools for r in routes):
            return None
        names = ", ".join(dict.fromkeys(r.provider for r in routes))
        return f"no configured upstream for it; configure one of: {names}"


def route_of(spec: RouteSpec) -> Route:
    """The provider-facing route for a catalog route."""
    return Route(
        provider=spec.provider,
        model=spec.model,
        image_model=spec.image_model,
        params=spec.params,
        durations=spec.durations,
        resolutions=spec.resolutions,
        aspect_ratios=spec.aspect_ratios,
    )
