"""The application factory: one FastAPI app with the native API, every dialect,
media, upstream callbacks, the playground, and (optionally) the worker in-process."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vidgate import __version__
from vidgate.api.context import Services, services
from vidgate.api.errors import ErrorRouter, install_error_handlers
from vidgate.api.limits import BodySizeLimit
from vidgate.api.media import router as media_router
from vidgate.api.native import router as native_router
from vidgate.catalog.loader import load_catalog
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.delivery.urlguard import UrlGuard
from vidgate.jobs.service import JobService
from vidgate.media.storage import storage_from_url
from vidgate.providers.base import CallbackRequest
from vidgate.store import jobs as job_store
from vidgate.store.engine import Database
from vidgate.store.migrate import migrate
from vidgate.worker.loop import Worker
from vidgate.worker.providers import ProviderPool

log = logging.getLogger(__name__)

# Optional parts, each a module exposing ``install(app, errors)``; added as they land.
EXTENSIONS: tuple[str, ...] = (
    "vidgate.api.dialects",
    "vidgate.api.admin",
    "vidgate.delivery",
    "vidgate.web",
)


async def build_services(settings: Settings, *, env: dict[str, str] | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    await migrate(db)
    catalog = load_catalog(settings.catalog)
    storage = storage_from_url(settings.storage_url, data_dir=settings.data_dir)
    http = httpx.AsyncClient(follow_redirects=True, timeout=settings.upstream_timeout_s)
    pool = ProviderPool(settings, http, env=env)
    jobs = JobService(
        db,
        catalog,
        job_timeout_s=settings.job_timeout_s,
        credit_usd=settings.apiframe_credit_usd,
        availability=pool.unavailable_reason,
        url_guard=UrlGuard(settings.url_allowlist),
        retention_days=settings.retention_days,
    )
    worker = Worker(
        db,
        jobs,
        catalog,
        pool,
        storage,
        concurrency=settings.worker_concurrency,
        poll_interval_s=settings.worker_poll_interval_s,
        lease_s=settings.lease_s,
        max_output_bytes=settings.max_output_bytes,
    )
    jobs.wake_worker = worker.wake
    return Services(settings, db, catalog, storage, http, pool, jobs, worker, settings.signing_secret())


async def close_services(svc: Services) -> None:
    await svc.http.aclose()
    await svc.db.dispose()


def create_app(settings: Settings, *, run_worker: bool = True, env: dict[str, str] | None = None) -> FastAPI:
    errors = ErrorRouter()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = await build_services(settings, env=env)
        app.state.services = svc
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if run_worker:
            tasks.append(asyncio.create_task(svc.worker.run(stop), name="worker"))
        for starter in app.state.background:
            tasks.append(asyncio.create_task(starter(svc, stop)))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=15)
            await close_services(svc)

    app = FastAPI(
        title="vidgate",
        version=__version__,
        description="A self-hosted gateway for AI video generation.",
        lifespan=lifespan,
    )
    app.state.errors = errors
    app.state.background = []  # coroutines (svc, stop) started with the app
    install_error_handlers(app, errors)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, errors=errors)
    app.include_router(native_router)
    app.include_router(media_router)
    app.add_api_route("/healthz", _health, methods=["GET"], include_in_schema=False)
    app.add_api_route("/callbacks/{provider}", _callback, methods=["POST"], include_in_schema=False)
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        install = getattr(module, "install", None)
        if install is not None:
            install(app, errors)
    return app


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
    svc.worker.wake()
    return JSONResponse({"ok": True})
