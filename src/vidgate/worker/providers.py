"""The set of configured upstreams: adapters built once per process from settings.

A provider is enabled when its API key is set (ComfyUI: its base URL). Test-mode
jobs always go to the simulator; live jobs try the model's catalog routes in order,
skipping disabled providers and providers whose circuit is open.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from vidgate.catalog.models import ModelSpec, RouteSpec
from vidgate.config import Settings, provider_settings
from vidgate.net.urlguard import UrlGuard, pinned_client
from vidgate.providers.base import ProviderAdapter, ProviderContext, Route
from vidgate.providers.registry import PROVIDERS, adapter_factory
from vidgate.providers.simulator import SIMULATOR_ROUTE
from vidgate.worker.breaker import CircuitBreaker

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
        self._adapters: dict[str, ProviderAdapter] = {}
        self._contexts: dict[str, ProviderContext] = {}
        callback_base = settings.public_url.rstrip("/") if settings.public_url else None
        for name, info in PROVIDERS.items():
            config = provider_settings(name, dict(env) if env is not None else None, file=settings.config)
            if name == "simulator":
                config.setdefault("latency_s", str(settings.simulator_latency_s))
            elif not any(config.get(setting) for setting in info.enabled_by):
                continue
            ctx = ProviderContext(
                http=http,
                api_key=config.pop("api_key", None),
                base_url=config.pop("base_url", info.default_base_url).rstrip("/"),
                options=config,
                callback_url=f"{callback_base}/callbacks/{name}" if callback_base else None,
                timeout_s=settings.upstream_timeout_s,
                submit_timeout_s=settings.upstream_submit_timeout_s,
                user_http=self.user_http,
            )
            try:
                self._adapters[name] = adapter_factory(name)(ctx)
                self._contexts[name] = ctx
            except (ImportError, AttributeError) as exc:  # a provider module missing its extra
                log.warning("provider %s is configured but could not be loaded: %s", name, exc)

    def install(self, name: str, adapter: ProviderAdapter, ctx: ProviderContext | None = None) -> None:
        """Put an adapter in place of (or beside) the configured ones (tools, tests, benchmarks)."""
        self._adapters[name] = adapter
        if ctx is not None:
            self._contexts[name] = ctx

    @property
    def enabled(self) -> list[str]:
        return sorted(n for n in self._adapters if n != "simulator")

    def adapter(self, name: str) -> ProviderAdapter | None:
        return self._adapters.get(name)

    def context(self, name: str) -> ProviderContext | None:
        """The settings an enabled provider was built with (never exposed over HTTP)."""
        return self._contexts.get(name)

    def call_timeout(self, name: str) -> float:
        """The worker's outer limit on a poll, cancel or find: the provider's own limit plus a margin."""
        ctx = self._contexts.get(name)
        return (ctx.timeout_s if ctx else 30.0) + 5.0

    def submit_timeout(self, name: str) -> float:
        """The worker's outer limit on one submit (longer than a poll), plus a margin."""
        ctx = self._contexts.get(name)
        return (ctx.submit_timeout_s if ctx else SUBMIT_TIMEOUT_S) + 5.0

    async def aclose(self) -> None:
        """Close the client the pool owns (the user-URL client); the shared one is the caller's."""
        if self.user_http is not None:
            await self.user_http.aclose()

    def routes_for(self, spec: ModelSpec, mode: str) -> list[Route]:
        """The routes a job may take, in order (circuit state is checked at submit time)."""
        if mode == "test":
            if spec.outputs > 1:  # e.g. midjourney-video's four takes
                return [
                    Route(SIMULATOR_ROUTE.provider, SIMULATOR_ROUTE.model, params={"outputs": spec.outputs})
                ]
            return [SIMULATOR_ROUTE]
        return [_route(r) for r in spec.routes if r.provider in self._adapters]

    def unavailable_reason(self, spec: ModelSpec) -> str | None:
        """None when a live job for ``spec`` has an upstream; otherwise why not."""
        if not spec.routes:
            return "no upstream provider is known to serve this model"
        if any(r.provider in self._adapters for r in spec.routes):
            return None
        names = ", ".join(dict.fromkeys(r.provider for r in spec.routes))
        return f"no configured upstream for it; configure one of: {names}"


def _route(spec: RouteSpec) -> Route:
    return Route(
        provider=spec.provider,
        model=spec.model,
        image_model=spec.image_model,
        params=spec.params,
        durations=spec.durations,
    )
