"""The worker: lease due jobs and step each one through its provider.

A job is a row with a ``run_at``; nothing sleeps per job. Each turn of the loop
leases as many due jobs as there are free slots, runs one step for each (submit,
poll, or fetch), records the outcome and the next ``run_at``, and lets the lease
go. While a step runs, its lease is renewed every third of the lease time, so a
short lease (15 s by default) is safe for slow upstream calls and a worker that
dies is noticed quickly: its jobs are leased again by any worker once its lease
lapses. On SIGTERM (``stop``) the worker stops leasing, gives in-flight steps a
short grace, and hands every remaining lease back at once, due now.

Every write goes through ``JobLifecycle``: the worker decides what happened, the
lifecycle owns the job's state, events and money. Submitting, with its retries and
reconciliation of unknown outcomes, lives in ``vidgate.worker.submit``. Every later
call for a job (poll, cancel, download) goes through the key of the provider's pool
that submitted it (``jobs.upstream_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from datetime import timedelta

from vidgate.catalog.loader import Catalog
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.domain.states import JobStatus
from vidgate.errors import ServiceUnavailable
from vidgate.media.storage import Storage
from vidgate.observability.metrics import Metrics
from vidgate.providers.base import (
    Capability,
    UpstreamError,
    UpstreamOutput,
    UpstreamRef,
    UpstreamStatus,
)
from vidgate.service.attempts import SubmitAttempts
from vidgate.service.lifecycle import JobLifecycle, job_fields
from vidgate.service.routes import RouteSettings
from vidgate.worker.calls import UpstreamCalls
from vidgate.worker.providers import ProviderPool
from vidgate.worker.rehost import OutputRefused, rehost
from vidgate.worker.schedule import before_deadline, next_poll_delay, retry_delay
from vidgate.worker.submit import Submitter

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0  # in-flight steps get this long after SIGTERM, then their leases go back


class Worker:
    def __init__(
        self,
        lifecycle: JobLifecycle,
        attempts: SubmitAttempts,
        catalog: Catalog,
        pool: ProviderPool,
        storage: Storage,
        *,
        concurrency: int = 16,
        poll_interval_s: float = 0.5,
        lease_s: float = 15.0,
        max_output_bytes: int = 2 * 1024**3,
        metrics: Metrics | None = None,
        routes: RouteSettings | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.catalog = catalog
        self.pool = pool
        self.storage = storage
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.max_output_bytes = max_output_bytes
        self.shutdown_grace_s = SHUTDOWN_GRACE_S
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.metrics = metrics
        self.calls = UpstreamCalls(metrics)
        self.submitter = Submitter(
            lifecycle, attempts, catalog, pool, self.owner, calls=self.calls, routes=routes
        )
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._steps: dict[JobStatus, Callable[[Job], Awaitable[None]]] = {
            JobStatus.QUEUED: self.submitter.submit,
            JobStatus.SUBMITTING: self.submitter.submit,
            JobStatus.RUNNING: self._poll,
            JobStatus.FETCHING: self._fetch,
            JobStatus.CANCELED: self._cancel_upstream,
        }

    def wake(self) -> None:
        """Something became due (a new job, a callback): look now, not at the next tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "worker %s started (concurrency %d, lease %.0f s)", self.owner, self.concurrency, self.lease_s
        )
        outage = 0
        while not stop.is_set():
            self._wake.clear()  # before the tick: a wake during it must not be lost
            wait = self.poll_interval_s
            try:
                await self.tick()
                outage = 0
            except ServiceUnavailable:
                outage += 1
                wait = min(5.0, self.poll_interval_s * 2**outage)
                log.warning("worker: the database is unavailable; trying again in %.1f s", wait)
            except Exception:  # the loop must outlive any one bad turn
                log.exception("worker turn failed")
            await self._idle(stop, wait)
        await self._shut_down()

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()

    async def _shut_down(self) -> None:
        """Stop leasing (done), give in-flight steps a grace, then hand every lease back."""
        if self._running:
            log.info("worker %s stopping: %d step(s) in flight", self.owner, len(self._running))
            await asyncio.wait(self._running, timeout=self.shutdown_grace_s)
            for task in list(self._running):
                task.cancel()
            if self._running:
                await asyncio.wait(self._running, timeout=2)
        try:
            handed = await self.lifecycle.release_all(self.owner)
        except Exception:  # noqa: BLE001 (the database may be why we stop; leases then lapse)
            log.warning("worker %s could not hand its leases back; they will lapse", self.owner)
            return
        log.info("worker %s stopped; handed back %d lease(s)", self.owner, handed)

    async def tick(self) -> int:
        """Lease what is due and start a step for each; returns how many were started."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        leased = await self.lifecycle.lease_due(self.owner, lease_s=self.lease_s, limit=free)
        for job in leased:
            task = asyncio.create_task(self._step(job), name=f"step:{job.id}")
            self._running.add(task)
            task.add_done_callback(self._step_done)
        return len(leased)

    def _step_done(self, task: asyncio.Task[None]) -> None:
        """A slot is free: look for more due work now rather than at the next tick."""
        self._running.discard(task)
        self._wake.set()

    async def drain(self, *, timeout_s: float = 60.0) -> None:
        """Step jobs until none is active, or the time is up (tests and tools)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            started = await self.tick()
            if self._running:
                await asyncio.wait(self._running, timeout=0.5)
                continue
            if not await self.lifecycle.active_count():
                return
            if not started:
                await asyncio.sleep(0.05)

    # ------------------------------------------------------------- steps

    async def _step(self, job: Job) -> None:
        try:
            async with self._heartbeat(job):
                if utcnow() >= job.deadline_at and not job.terminal:
                    await self._expire(job)
                    return
                step = self._steps.get(job.status)
                if step is None:  # a terminal job whose lease we somehow got: nothing to do
                    await self.lifecycle.release(job.id, self.owner, run_at=None)
                    return
                await step(job)
        except asyncio.CancelledError:
            raise  # shutting down: the lease is handed back by _shut_down
        except ServiceUnavailable:
            log.warning("step of %s stopped: the database is unavailable; its lease will lapse", job.id)
        except Exception:
            log.exception("step of %s failed unexpectedly; it will be retried", job.id, extra=job_fields(job))
            with contextlib.suppress(Exception):
                await self.lifecycle.release(job.id, self.owner, run_at=utcnow() + timedelta(seconds=5))

    @contextlib.asynccontextmanager
    async def _heartbeat(self, job: Job) -> AsyncIterator[None]:
        """Renew the job's lease every third of the lease time while a step runs."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.lease_s / 3)
                with contextlib.suppress(Exception):
                    if not await self.lifecycle.renew(job.id, self.owner, lease_s=self.lease_s):
                        return  # the lease is gone (the step's writes will change nothing)

        beater = asyncio.create_task(beat(), name=f"lease:{job.id}")
        try:
            yield
        finally:
            beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beater

    async def _expire(self, job: Job) -> None:
        """Past the deadline. A running job gets one last look upstream first."""
        adapter = self.pool.adapter_for(job.provider, job.upstream_key) if job.provider else None
        if adapter is not None and job.upstream_id and job.status is JobStatus.RUNNING:
            try:
                async with (
                    self.calls.timed(job.provider or "", "poll"),
                    asyncio.timeout(self.pool.call_timeout(job.provider or "")),
                ):
                    status = await adapter.poll(self._ref(job))
            except (UpstreamError, TimeoutError):
                status = None
            if status is not None and status.state == "succeeded":
                await self._record(job, status)
                return
        last = await self.submitter.last_error(job) if job.upstream_id is None else None
        await self.lifecycle.fail(
            job,
            self.owner,
            "timeout",
            f"the job did not finish before its deadline ({job.deadline_at.isoformat()})"
            + (f"; the last upstream answer was {last}" if last else ""),
            target=JobStatus.EXPIRED,
        )
        await self.submitter.cancel_orphans(job)
        if adapter is not None and job.upstream_id and Capability.CANCEL in adapter.capabilities:
            with contextlib.suppress(UpstreamError, TimeoutError):
                async with (
                    self.calls.timed(job.provider or "", "cancel"),
                    asyncio.timeout(self.pool.call_timeout(job.provider or "")),
                ):
                    await adapter.cancel(self._ref(job))

    async def _cancel_upstream(self, job: Job) -> None:
        """The caller canceled: tell the upstream (best effort), then never look again."""
        adapter = self.pool.adapter_for(job.provider, job.upstream_key)
        if adapter is not None and job.upstream_id and Capability.CANCEL in adapter.capabilities:
            try:
                async with (
                    self.calls.timed(job.provider or "", "cancel"),
                    asyncio.timeout(self.pool.call_timeout(job.provider or "")),
                ):
                    await adapter.cancel(self._ref(job))
            except (UpstreamError, TimeoutError) as exc:
                log.info("upstream cancel of %s failed (%s); it stays canceled here", job.id, exc)
        await self.submitter.cancel_orphans(job)
        await self.lifecycle.release(job.id, self.owner, run_at=None)

    async def _poll(self, job: Job) -> None:
        adapter = self.pool.adapter_for(job.provider, job.upstream_key)
        if adapter is None:
            await self.lifecycle.fail(
                job, self.owner, "provider_disabled", f"provider {job.provider!r} is no longer configured"
            )
            return
        try:
            async with (
                self.calls.timed(job.provider or "", "poll"),
                asyncio.timeout(self.pool.call_timeout(job.provider or "")),
            ):
                status = await adapter.poll(self._ref(job))
        except (UpstreamError, TimeoutError) as exc:
            await self._poll_failed(job, exc)
            return
        await self._record(job, status)

    async def _poll_failed(self, job: Job, exc: Exception) -> None:
        transient = (
            not isinstance(exc, UpstreamError) or exc.retryable or exc.code == "upstream_protocol_error"
        )
        if not transient:
            assert isinstance(exc, UpstreamError)
            await self.lifecycle.fail(job, self.owner, exc.code, exc.message, request_id=exc.request_id)
            return
        retry_after = exc.retry_after_s if isinstance(exc, UpstreamError) else None
        log.info("poll of %s failed transiently (%s); retrying", job.id, exc, extra=job_fields(job))
        delay = retry_delay(job.attempts, retry_after, cap_s=10.0)
        await self.lifecycle.release(
            job.id, self.owner, run_at=before_deadline(job, delay), leased_run_at=job.run_at
        )

    async def _record(self, job: Job, status: UpstreamStatus) -> None:
        if status.state == "succeeded":
            outputs = [asdict(o) | {"headers": dict(o.headers)} for o in status.outputs]
            fresh = await self.lifecycle.outputs_ready(
                job, self.owner, outputs=outputs, raw_status=status.raw_status, reported=status.reported_cost
            )
            if fresh is not None:
                await self._fetch(fresh)
            return
        if status.state in ("failed", "canceled"):
            error = status.error
            code = error.code if error else "upstream_failed"
            message = error.message if error else f"the upstream reported {status.raw_status or status.state}"
            await self.lifecycle.fail(job, self.owner, code, message, reported=status.reported_cost)
            return
        progress = max(job.progress, min(98, status.progress or 0))
        await self.lifecycle.progress(
            job, self.owner, progress=progress, raw_status=status.raw_status, eta_s=status.eta_s
        )
        delay = next_poll_delay(status, job.attempts)
        # a callback that came while this poll was out keeps the job due now
        await self.lifecycle.release(
            job.id, self.owner, run_at=before_deadline(job, delay), leased_run_at=job.run_at
        )

    async def _fetch(self, job: Job) -> None:
        adapter = self.pool.adapter_for(job.provider, job.upstream_key)
        if adapter is None:
            await self.lifecycle.fail(
                job, self.owner, "provider_disabled", f"provider {job.provider!r} is no longer configured"
            )
            return
        outputs = [
            UpstreamOutput(
                url=o["url"],
                headers=o.get("headers") or {},
                content_type=o.get("content_type"),
                kind=o.get("kind", "video"),
            )
            for o in job.outputs
        ]
        started = time.perf_counter()
        try:
            async with self.calls.timed(job.provider or "", "fetch"):
                media = await rehost(
                    adapter, outputs, job_id=job.id, storage=self.storage, max_bytes=self.max_output_bytes
                )
        except OutputRefused as exc:
            await self.lifecycle.fail(job, self.owner, "invalid_output", str(exc))
            return
        except UpstreamError as exc:
            if exc.retryable:
                delay = retry_delay(job.attempts, exc.retry_after_s, cap_s=10.0)
                await self.lifecycle.release(job.id, self.owner, run_at=before_deadline(job, delay))
            else:
                await self.lifecycle.fail(job, self.owner, exc.code, exc.message, request_id=exc.request_id)
            return
        if self.metrics is not None:
            self.metrics.rehosted(media.bytes, time.perf_counter() - started)
        await self.lifecycle.succeed(job, self.owner, media)

    def _ref(self, job: Job) -> UpstreamRef:
        return UpstreamRef(
            id=job.upstream_id or "", request_id=job.upstream_request_id, state=job.upstream_state
        )
