"""Delivery and safety: webhooks from the outbox, rate limits, the SSRF guard, media retention.

``install(app, errors)`` (called by ``vidgate.api.app.create_app``) adds:

- the webhook API (``vidgate.delivery.routes``): endpoints, the delivery log, replays;
- the rate-limit middleware (``vidgate.delivery.ratelimit``), in memory, or in
  Redis when ``settings.redis_url`` is set; it lets requests through if Redis is down;
- two background loops started with the app: the outbox sender
  (``vidgate.delivery.sender``) and the media retention purger
  (``vidgate.delivery.retention``).

The SSRF guard (``vidgate.delivery.urlguard.UrlGuard``) is what ``JobService``
takes as ``url_guard``; the sender posts through ``pinned_client`` so that a
webhook URL is re-checked, and pinned to the checked address, on every attempt.
Knobs (retry schedule, intervals) come from ``DeliveryConfig.from_settings``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from vidgate.api.context import Services
from vidgate.api.errors import ErrorRouter
from vidgate.delivery.baseurl import BaseUrl, RememberBaseUrl
from vidgate.delivery.config import DeliveryConfig
from vidgate.delivery.ratelimit import RateLimitMiddleware
from vidgate.delivery.retention import run_purger
from vidgate.delivery.routes import router
from vidgate.delivery.sender import OutboxSender
from vidgate.delivery.urlguard import UrlGuard, guard_for_app, pinned_client

__all__ = ["DeliveryConfig", "OutboxSender", "UrlGuard", "install", "pinned_client"]


def install(app: FastAPI, errors: ErrorRouter) -> None:
    base_url = BaseUrl()
    app.state.delivery_base_url = base_url

    def current_services() -> Services | None:
        found: Services | None = getattr(app.state, "services", None)
        return found

    def config_for(svc: Services) -> DeliveryConfig:
        override: DeliveryConfig | None = getattr(app.state, "delivery_config", None)
        return override or DeliveryConfig.from_settings(svc.settings)

    async def send_webhooks(svc: Services, stop: asyncio.Event) -> None:
        guard = guard_for_app(app, svc.settings)
        sender = OutboxSender(
            svc, config_for(svc), guard=guard, base_url=lambda: base_url.resolve(svc.settings)
        )
        app.state.outbox_sender = sender
        await sender.run(stop)

    async def purge_media(svc: Services, stop: asyncio.Event) -> None:
        await run_purger(svc, stop, config_for(svc))

    app.include_router(router)
    background: list[Any] = app.state.background
    background += [send_webhooks, purge_media]
    app.add_middleware(RememberBaseUrl, memo=base_url)
    app.add_middleware(RateLimitMiddleware, errors=errors, services=current_services)
