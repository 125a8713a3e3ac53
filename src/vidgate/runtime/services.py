"""The composition root: build the typed services of one process, start and stop its loops.

Nothing below this package builds a service or reads ``Settings`` for wiring: the
store, catalog, storage, URL guard, provider pool, job service, worker and webhook
sender are all made here, once per process, and handed down. ``Runtime.run`` starts
the background loops that belong to the process's ``Role`` and ``Runtime.close``
stops them and releases connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import httpx

from vidgate.api.baseurl import BaseUrl
from vidgate.api.context import Services
from vidgate.api.dialects import WEBHOOK_FORMATS
from vidgate.catalog.loader import load_catalog
from vidgate.config import Settings
from vidgate.media.backends import storage_from_url
from vidgate.media.links import MediaLinks
from vidgate.net.urlguard import UrlGuard
from vidgate.observability.health import Ops
from vidgate.runtime.ops import build_ops
from vidgate.runtime.roles import Role
from vidgate.service.accounts import AccountService
from vidgate.service.jobs import JobService
from vidgate.service.lifecycle import JobLifecycle
from vidgate.service.retention import run_purger
from vidgate.service.routes import RouteSettings
from vidgate.store.engine import open_database
from vidgate.store.migrate import migrate
from vidgate.webhooks.config import DeliveryConfig
from vidgate.webhooks.formats import DialectHooks
from vidgate.webhooks.sender import OutboxSender
from vidgate.worker.loop import Worker
from vidgate.worker.providers import ProviderPool

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything one process runs, built for its role."""

    role: Role
    services: Services
    worker: Worker
    sender: OutboxSender
    delivery: DeliveryConfig
    base_url: BaseUrl
    ops: Ops
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, *, loops: bool | None = None) -> None:
        """Start the background loops of this role (``loops=False``: none, for tests)."""
        if not (self.role.runs_loops if loops is None else loops):
            return
        svc = self.services
        self._tasks += [
            asyncio.create_task(self.worker.run(self._stop), name="worker"),
            asyncio.create_task(self.sender.run(self._stop), name="webhook-sender"),
            asyncio.create_task(
                run_purger(
                    svc.db,
                    svc.storage,
                    self._stop,
                    interval_s=self.delivery.purge_interval_s,
                    batch=self.delivery.purge_batch,
                ),
                name="media-purger",
            ),
        ]

    async def wait(self) -> None:
        """Until the loops end (after ``stop``)."""
        if self._tasks:
            await asyncio.wait(self._tasks)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        """Stop the loops (waiting for in-flight steps, bounded), then release connections."""
        started = time.monotonic()
        log.info("vidgate %s process shutting down: finishing in-flight steps", self.role.value)
        self._stop.set()
        unfinished = 0
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=30)
            except TimeoutError:
                unfinished += 1
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        await self.services.pool.aclose()
        await self.services.routes.aclose()
        await self.ops.aclose()
        await self.services.http.aclose()
        await self.services.db.dispose()
        log.info(
            "vidgate %s process stopped after %.1f s%s",
            self.role.value,
            time.monotonic() - started,
            f"; {unfinished} loop(s) did not finish in time (their leases will lapse)" if unfinished else "",
        )


async def build_runtime(
    settings: Settings, role: Role = Role.ALL, *, env: dict[str, str] | None = None
) -> Runtime:
    db = open_database(settings)
    await migrate(db)
    catalog = load_catalog(settings.catalog)
    storage = storage_from_url(settings.storage_url, data_dir=settings.data_dir)
    ops = build_ops(settings, db, storage, role)  # ops.metrics: the one Metrics of this process
    http = httpx.AsyncClient(follow_redirects=True, timeout=settings.upstream_timeout_s)
    guard = UrlGuard(settings.url_allowlist)
    pool = ProviderPool(settings, http, env=env, guard=guard)
    pool.breaker.on_change = ops.metrics.breaker_state
    secret = settings.signing_secret()
    lifecycle = JobLifecycle(db, catalog, retention_days=settings.retention_days, metrics=ops.metrics)
    routes = RouteSettings(db, catalog)
    await routes.refresh()
    jobs = JobService(
        db,
        catalog,
        storage,
        lifecycle,
        job_timeout_s=settings.job_timeout_s,
        availability=lambda spec: pool.unavailable_reason(spec, routes.cached(spec)),
        url_guard=guard,
        retention_days=settings.retention_days,
    )
    worker = Worker(
        lifecycle,
        catalog,
        pool,
        storage,
        concurrency=settings.worker_concurrency,
        poll_interval_s=settings.worker_poll_interval_s,
        lease_s=settings.lease_s,
        max_output_bytes=settings.max_output_bytes,
        metrics=ops.metrics,
        routes=routes,
    )
    if role.runs_loops:
        jobs.wake_worker = worker.wake
    base_url = BaseUrl()
    delivery = DeliveryConfig.from_settings(settings)

    def links() -> MediaLinks:
        return MediaLinks(base_url.resolve(settings), secret, settings.signed_url_ttl_s)

    sender = OutboxSender(
        db, delivery, guard=guard, links=links, hooks=DialectHooks(WEBHOOK_FORMATS), metrics=ops.metrics
    )
    services = Services(
        settings=settings,
        db=db,
        catalog=catalog,
        storage=storage,
        http=http,
        pool=pool,
        jobs=jobs,
        lifecycle=lifecycle,
        accounts=AccountService(db),
        routes=routes,
        guard=guard,
        signing_secret=secret,
        wake_worker=worker.wake,
        ops=ops,
    )
    return Runtime(role, services, worker, sender, delivery, base_url, ops)
