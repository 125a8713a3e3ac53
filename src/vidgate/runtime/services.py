"""The composition root: build the typed services of one process, start and stop its loops.

Nothing below this package builds a service or reads ``Settings`` for wiring: the
store, catalog, storage, URL guard, provider pool, job service, worker and webhook
sender are all made here, once per process, and handed down. ``Runtime.start`` starts
the background loops that belong to the process's ``Role`` (and, in every role, the
timer that reads the store gauges for ``/metrics``) and ``Runtime.close`` stops them
and releases connections.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from vidgate.service.attempts import SubmitAttempts
from vidgate.service.jobs import JobService
from vidgate.service.lifecycle import JobLifecycle
from vidgate.service.retention import run_purger
from vidgate.service.routes import RouteSettings
from vidgate.store.changes import JobChanges
from vidgate.store.engine import Database, open_database
from vidgate.store.listen import JobListener
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
    listener: JobListener | None = None  # PostgreSQL, API roles: wakes this process's waiters
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _listening: asyncio.Task[None] | None = None

    def start(self, *, loops: bool | None = None) -> None:
        """Start the store-gauge timer, and the background loops of this role
        (``loops=False``: no job or delivery loop, for tests).

        The job change listener (PostgreSQL, API roles) starts either way: it is part of
        answering requests, not a loop of the worker side.
        """
        if self.listener is not None and self._listening is None:
            self._listening = asyncio.create_task(self.listener.run(self._stop), name="job-listener")
        gauges = self.ops.gauges
        if gauges is not None:
            refresh_s = self.services.settings.metrics_refresh_s
            self._tasks.append(
                asyncio.create_task(gauges.run(self._stop, interval_s=refresh_s), name="store-gauges")
            )
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
        self.services.lifecycle.changes.close()  # waiters answer now with what they have
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
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
    changes, listener = _job_changes(db, role)
    lifecycle = JobLifecycle(
        db, catalog, retention_days=settings.retention_days, metrics=ops.metrics, changes=changes
    )
    attempts = SubmitAttempts(db)
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
        attempts=attempts,
    )
    worker = Worker(
        lifecycle,
        attempts,
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
        attempts=attempts,
        accounts=AccountService(db),
        routes=routes,
        guard=guard,
        signing_secret=secret,
        wake_worker=worker.wake,
        ops=ops,
    )
    return Runtime(role, services, worker, sender, delivery, base_url, ops, listener)


def _job_changes(db: Database, role: Role) -> tuple[JobChanges, JobListener | None]:
    """How this process's waiters hear of job changes (see ``store.changes``).

    PostgreSQL: every process announces (NOTIFY); processes that answer HTTP listen.
    SQLite: in process only; a process that runs no worker of its own (``serve
    --no-worker`` next to ``vidgate worker``) cannot be woken, so its waiters re-read.
    """
    if db.is_sqlite:
        return JobChanges(sole_writer=role.runs_loops), None
    changes = JobChanges(cross_process=True)
    return changes, JobListener(db.url, changes) if role.serves_http else None
