"""The HTTP app: native API, every dialect, the webhooks API, admin, media, upstream
callbacks and the playground. Services come from the composition root
(``vidgate.runtime``) through the lifespan it passes in."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vidgate import __version__, web
from vidgate.api import admin, dialects, openapi
from vidgate.api.baseurl import BaseUrl, RememberBaseUrl
from vidgate.api.context import Services, services
from vidgate.api.errors import ErrorRouter, install_error_handlers
from vidgate.api.limits import BodySizeLimit
from vidgate.api.media import router as media_router
from vidgate.api.native import router as native_router
from vidgate.api.ratelimit import RateLimitMiddleware
from vidgate.api.webhooks import router as webhooks_router
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.providers.base import CallbackRequest
from vidgate.store import jobs as job_store
from vidgate.web import docs as web_docs

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

log = logging.getLogger(__name__)


def create_api(settings: Settings, *, lifespan: Lifespan, base_url: BaseUrl) -> FastAPI:
    """The HTTP app: native API, dialects, webhooks API, admin, media, callbacks, playground.

    ``lifespan`` (from the composition root) puts ``Services`` on ``app.state.services``.
    """
    errors = ErrorRouter()
    app = FastAPI(
        title="vidgate",
        version=__version__,
        description="A self-hosted gateway for AI video generation.",
        lifespan=lifespan,
        docs_url=None,  # served offline by vidgate.web.docs
        redoc_url=None,
    )
    openapi.install(app, admin_enabled=bool(settings.admin_token))
    install_error_handlers(app, errors)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, errors=errors)
    app.include_router(native_router)
    app.include_router(media_router)
    app.include_router(webhooks_router)
    app.add_api_route("/healthz", _health, methods=["GET"], include_in_schema=False)
    app.add_api_route("/callbacks/{provider}", _callback, methods=["POST"], include_in_schema=False)
    dialects.install(app, errors)
    admin.install(app, errors)
    web.install(app, errors)
    web_docs.install(app, errors)
    app.add_middleware(RememberBaseUrl, memo=base_url)
    app.add_middleware(RateLimitMiddleware, errors=errors, services=lambda: _current(app))
    return app


def _current(app: FastAPI) -> Services | None:
    found: Services | None = getattr(app.state, "services", None)
    return found


async def _health(request: Request) -> dict[str, Any]:
    svc = services(request)
    async with svc.db.read() as conn:
        await conn.exec_driver_sql("SELECT 1")
    return {"status": "ok", "version": __version__, "providers": svc.pool.enabled}


async def _callback(provider: str, request: Request) -> Response:
    """An upstream calls us back: trust it only if signed, and in any case poll the job now."""
    svc = services(request)
    adapter = svc.pool.adapter(provider)
    if adapter is None:
        return JSONResponse({"error": "unknown provider"}, status_code=404)
    call = CallbackRequest(
        headers=dict(request.headers), body=await request.body(), query=dict(request.query_params)
    )
    challenge = getattr(importlib.import_module(type(adapter).__module__), "challenge_response", None)
    if challenge is not None and (answer := challenge(call)) is not None:
        return JSONResponse(answer)
    try:
        result = adapter.parse_callback(call)
    except Exception:  # an upstream's malformed callback must never 500
        log.warning("unreadable callback for %s", provider, exc_info=True)
        result = None
    if result is None:
        return JSONResponse({"ok": False}, status_code=400)
    async with svc.db.transaction() as conn:
        job = await job_store.job_by_upstream(conn, provider, result.upstream_id)
        if job is not None:
            await job_store.wake(conn, job.id, now=utcnow())
    svc.wake_worker()
    return JSONResponse({"ok": True})
