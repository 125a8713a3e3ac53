"""The HTTP app: native API, every dialect, the webhooks API, admin, media, upstream
callbacks and the playground. Services come from the composition root
(``vidgate.runtime``) through the lifespan it passes in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vidgate import __version__, web
from vidgate.api import admin, dialects, openapi
from vidgate.api.baseurl import BaseUrl, RememberBaseUrl
from vidgate.api.context import Services, services
from vidgate.api.dialects.roots import DialectRoots
from vidgate.api.errors import ErrorRouter, install_error_handlers
from vidgate.api.limits import BodyLimits
from vidgate.api.media import router as media_router
from vidgate.api.native import router as native_router
from vidgate.api.ratelimit import RateLimitMiddleware
from vidgate.api.video_events import router as video_events_router
from vidgate.api.webhooks import router as webhooks_router
from vidgate.config import Settings
from vidgate.errors import GatewayError
from vidgate.observability import health
from vidgate.observability.access import AccessLayer
from vidgate.observability.health import Ops
from vidgate.providers.base import CallbackRequest
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
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        errors=errors,
        max_depth=settings.max_json_depth,
        idle_timeout_s=settings.body_idle_timeout_s,
        total_timeout_s=settings.body_timeout_s,
    )
    app.include_router(native_router)
    app.include_router(video_events_router)
    app.include_router(media_router)
    app.include_router(webhooks_router)
    app.router.routes[0:0] = health.routes(lambda request: _ops(request.app))  # probes match first
    app.add_api_route("/callbacks/{provider}", _callback, methods=["POST"], include_in_schema=False)
    dialects.install(app, errors)
    admin.install(app)
    web.install(app)
    web_docs.install(app)
    app.add_middleware(RememberBaseUrl, memo=base_url)
    app.add_middleware(
        RateLimitMiddleware, errors=errors, services=lambda: _current(app), rules=dialects.edge_rules()
    )
    # every answer, including the layers' own, gets an id, a log line and a count
    app.add_middleware(
        AccessLayer,
        metrics=lambda: found.metrics if (found := _ops(app)) else None,
        dialects={"/v1": "native", "/admin": "admin"} | {d.prefix: d.name for d in dialects.DIALECTS},
        on_crash=lambda scope: errors.render(Request(scope), _internal_error()),
    )
    app.add_middleware(DialectRoots, roots=dialects.root_map(settings))  # outermost: rewrites paths first
    return app


def _current(app: FastAPI) -> Services | None:
    found: Services | None = getattr(app.state, "services", None)
    return found


def _ops(app: FastAPI) -> Ops | None:
    found = _current(app)
    return found.ops if found is not None else None


def _internal_error() -> GatewayError:
    error = GatewayError("internal error; the request changed nothing", code="internal_error")
    error.status, error.type = 500, "api_error"
    return error


async def _callback(provider: str, request: Request) -> Response:
    """An upstream calls us back: trust it only if signed, and in any case poll the job now."""
    svc = services(request)
    adapter = svc.pool.adapter(provider)
    if adapter is None:
        return JSONResponse({"error": "unknown provider"}, status_code=404)
    call = CallbackRequest(
        headers=dict(request.headers), body=await request.body(), query=dict(request.query_params)
    )
    if (answer := adapter.challenge_response(call)) is not None:
        return JSONResponse(answer)
    try:
        result = adapter.parse_callback(call)
    except Exception:  # an upstream's malformed callback must never 500
        log.warning("unreadable callback for %s", provider, exc_info=True)
        result = None
    if result is None:
        return JSONResponse({"ok": False}, status_code=400)
    # Only a wake-up: the worker polls and decides. So a callback that comes twice, out of
    # order, late (the job has ended) or for an unknown job changes nothing by itself. A
    # verified one for a job whose submit answer we never read names its upstream job.
    tracked = await svc.lifecycle.wake_by_upstream(provider, result.upstream_id) is not None
    job_id = call.query.get("job")
    if tracked or (
        result.verified
        and job_id
        and await svc.attempts.callback_for_open_attempt(job_id, provider, result.upstream_id)
    ):
        svc.wake_worker()
    return JSONResponse({"ok": True})
