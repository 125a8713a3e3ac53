"""The worker: lease due jobs and step each one through its provider.

A job is a row with a ``run_at``; nothing sleeps per job. Each turn of the loop
leases as many due jobs as there are free slots, runs one step for each (submit,
poll, or fetch), records the outcome and the next ``run_at``, and lets the lease
go. A worker that dies mid-step leaves a lease that lapses, and the job is picked
up again by any worker. One process can track thousands of running jobs this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from vidgate.catalog.loader import Catalog
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.domain.states import JobStatus
from vidgate.media.storage import Storage
from vidgate.providers.base import (
    Capability,
    Route,
    SubmitAttempt,
    UpstreamError,
    UpstreamOutput,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamTimeout,
)
from vidgate.service.jobs import JobService
from vidgate.store import events as event_store
from vidgate.store import jobs as job_store
from vidgate.store.engine import Database
from vidgate.worker.providers import ProviderPool
from vidgate.worker.rehost import OutputRefused, rehost
from vidgate.worker.schedule import next_poll_delay, retry_delay

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        db: Database,
        service: JobService,
        catalog: Catalog,
        pool: ProviderPool,
        storage: Storage,
        *,
        concurrency: int = 16,
        poll_interval_s: float = 0.5,
        lease_s: float = 60.0,
        max_output_bytes: int = 2 * 1024**3,
    ) -> None:
        self.db = db
        self.service = service
        self.catalog = catalog
        self.pool = pool
        self.storage = storage
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.max_output_bytes = max_output_bytes
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._last_beat: dict[str, float] = {}
        self._steps: dict[JobStatus, Callable[[Job], Awaitable[None]]] = {
            JobStatus.QUEUED: self._submit,
            JobStatus.SUBMITTING: self._submit,
            JobStatus.RUNNING: self._poll,
            JobStatus.FETCHING: self._fetch,
            JobStatus.CANCELED: self._cancel_upstream,
        }

    def wake(self) -> None:
        """Something became due (a new job, a callback): look now, not at the next tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker %s started (concurrency %d)", self.owner, self.concurrency)
        while not stop.is_set():
            self._wake.clear()  # before the tick: a wake during it must not be lost
            try:
                await self.tick()
            except Exception:  # the loop must outlive any one bad turn (DB blip, bug)
                log.exception("worker turn failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    waiters = [
                        asyncio.ensure_future(self._wake.wait()),
                        asyncio.ensure_future(stop.wait()),
                    ]
                    try:
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for waiter in waiters:
                            waiter.cancel()
        if self._running:
            await asyncio.wait(self._running, timeout=30)

    async def tick(self) -> int:
        """Lease what is due and start a step for each; returns how many were started."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        now = utcnow()
        async with self.db.transaction() as conn:
            leased = await job_store.lease_due(
                conn,
                owner=self.owner,
                now=now,
                until=now + timedelta(seconds=self.lease_s),
                limit=free,
            )
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
            async with self.db.read() as conn:
                if not await job_store.active_count(conn):
                    return
            if not started:
                await asyncio.sleep(0.05)

    # ------------------------------------------------------------- steps

    async def _step(self, job: Job) -> None:
        try:
            if utcnow() >= job.deadline_at and not job.terminal:
                await self._expire(job)
                return
            step = self._steps.get(job.status)
            if step is None:  # a terminal job whose lease we somehow got: nothing to do
                await self._release(job, None)
                return
            await step(job)
        except Exception:
            log.exception("step of %s failed unexpectedly; it will be retried", job.id)
            await self._release(job, utcnow() + timedelta(seconds=5))

    async def _expire(self, job: Job) -> None:
        adapter = self.pool.adapter(job.provider) if job.provider else None
        async with self.db.transaction() as conn:
            await self.service.finish(
                conn,
                job,
                JobStatus.EXPIRED,
                now=utcnow(),
                lease_owner=self.owner,
                error_code="timeout",
                error_message=f"the job did not finish before its deadline ({job.deadline_at.isoformat()})",
            )
        if adapter is not None and job.upstream_id:
            with contextlib.suppress(UpstreamError, TimeoutError):
                async with asyncio.timeout(10):
                    await adapter.cancel(self._ref(job))

    async def _cancel_upstream(self, job: Job) -> None:
        """The caller canceled: tell the upstream (best effort), then never look again."""
        adapter = self.pool.adapter(job.provider or "")
        if adapter is not None and job.upstream_id and Capability.CANCEL in adapter.capabilities:
            try:
                async with asyncio.timeout(self.pool.call_timeout(job.provider or "")):
                    await adapter.cancel(self._ref(job))
            except (UpstreamError, TimeoutError) as exc:
                log.info("upstream cancel of %s failed (%s); it stays canceled here", job.id, exc)
        await self._release(job, None)

    async def _submit(self, job: Job) -> None:
        spec = self.catalog.get(job.model)
        routes = self.pool.routes_for(spec, job.mode)
        now = utcnow()
        if not routes:
            await self._fail(job, "no_route", self.pool.unavailable_reason(spec) or "no upstream available")
            return
        async with self.db.transaction() as conn:
            moved = await job_store.transition(
                conn, job.id, JobStatus.SUBMITTING, now=now, lease_owner=self.owner
            )
        if not moved and job.status is not JobStatus.SUBMITTING:
            return
        last_error: UpstreamError | None = None
        for index, route in enumerate(routes):
            adapter = self.pool.adapter(route.provider)
            if adapter is None or not self.pool.breaker.allows(route.provider):
                continue
            duration = route.fit_duration(job.request.duration_s)
            if duration is None:
                last_error = UpstreamRejected(
                    f"no configured upstream can make a {job.request.duration_s} s clip of this model "
                    f"({route.provider} makes at most {max(route.durations)} s)"
                )
                continue
            request = job.request
            if duration != request.duration_s:
                request = request.model_copy(update={"duration_s": duration})
            try:
                async with asyncio.timeout(self.pool.submit_timeout(route.provider)):
                    ref = await adapter.submit(request, route, SubmitAttempt.first(job.id))
            except TimeoutError:
                last_error = UpstreamTimeout("the upstream did not acknowledge the submission in time")
            except UpstreamError as exc:
                last_error = exc
            else:
                self.pool.breaker.success(route.provider)
                await self._submitted(job, index, route, ref)
                return
            if not last_error.retryable:
                break
            self.pool.breaker.failure(route.provider)
            log.warning(
                "submit of %s to %s failed (%s); trying the next route",
                job.id,
                route.provider,
                last_error,
            )
        error = last_error or UpstreamTimeout("every route is temporarily disabled after repeated failures")
        await self._fail(job, error.code, error.message, request_id=error.request_id)

    async def _submitted(self, job: Job, index: int, route: Route, ref: UpstreamRef) -> None:
        now = utcnow()
        async with self.db.transaction() as conn:
            await job_store.transition(
                conn,
                job.id,
                JobStatus.RUNNING,
                now=now,
                lease_owner=self.owner,
                route_index=index,
                provider=route.provider,
                upstream_model=route.image_model
                if job.request.first_frame and route.image_model
                else route.model,
                upstream_id=ref.id,
                upstream_request_id=ref.request_id,
                upstream_state=dict(ref.state),
                attempts=0,
            )
        await self._release(job, now + timedelta(seconds=next_poll_delay(None, 0)))

    async def _poll(self, job: Job) -> None:
        adapter = self.pool.adapter(job.provider or "")
        if adapter is None:
            await self._fail(job, "provider_disabled", f"provider {job.provider!r} is no longer configured")
            return
        try:
            async with asyncio.timeout(self.pool.call_timeout(job.provider or "")):
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
            await self._fail(job, exc.code, exc.message, request_id=exc.request_id)
            return
        retry_after = exc.retry_after_s if isinstance(exc, UpstreamError) else None
        log.info("poll of %s failed transiently (%s); retrying", job.id, exc)
        await self._release(job, utcnow() + timedelta(seconds=retry_delay(job.attempts, retry_after)))

    async def _record(self, job: Job, status: UpstreamStatus) -> None:
        now = utcnow()
        if status.state == "succeeded":
            outputs = [asdict(o) | {"headers": dict(o.headers)} for o in status.outputs]
            async with self.db.transaction() as conn:
                await job_store.transition(
                    conn,
                    job.id,
                    JobStatus.FETCHING,
                    now=now,
                    lease_owner=self.owner,
                    outputs=outputs,
                    upstream_status=status.raw_status,
                    progress=99,
                )
                fresh = await job_store.get_job(conn, job.id)
            if fresh is not None:
                await self._fetch(fresh)
            return
        if status.state in ("failed", "canceled"):
            error = status.error
            code = error.code if error else "upstream_failed"
            message = error.message if error else f"the upstream reported {status.raw_status or status.state}"
            await self._fail(job, code, message)
            return
        progress = max(job.progress, min(98, status.progress or 0))
        async with self.db.transaction() as conn:
            await job_store.update_job(
                conn,
                job.id,
                now=now,
                lease_owner=self.owner,
                progress=progress,
                upstream_status=status.raw_status,
                eta_s=status.eta_s,
            )
            if progress != job.progress:
                await event_store.append_event(
                    conn,
                    account_id=job.account_id,
                    job_id=job.id,
                    type="video.progress",
                    payload={"status": job.status.value, "progress": progress},
                    at=now,
                )
        polls = job.attempts
        await self._release(job, now + timedelta(seconds=next_poll_delay(status, polls)))

    async def _fetch(self, job: Job) -> None:
        adapter = self.pool.adapter(job.provider or "")
        if adapter is None:
            await self._fail(job, "provider_disabled", f"provider {job.provider!r} is no longer configured")
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
        try:
            media = await rehost(
                adapter,
                outputs,
                job_id=job.id,
                storage=self.storage,
                max_bytes=self.max_output_bytes,
                heartbeat=lambda: self._heartbeat(job),
            )
        except OutputRefused as exc:
            await self._fail(job, "invalid_output", str(exc))
            return
        except UpstreamError as exc:
            if exc.retryable:
                await self._release(
                    job, utcnow() + timedelta(seconds=retry_delay(job.attempts, exc.retry_after_s))
                )
            else:
                await self._fail(job, exc.code, exc.message, request_id=exc.request_id)
            return
        async with self.db.transaction() as conn:
            await self.service.finish(
                conn, job, JobStatus.SUCCEEDED, now=utcnow(), lease_owner=self.owner, media=media
            )

    # ----------------------------------------------------------- helpers

    async def _fail(self, job: Job, code: str, message: str, *, request_id: str | None = None) -> None:
        values: dict[str, Any] = {"upstream_request_id": request_id} if request_id else {}
        async with self.db.transaction() as conn:
            await self.service.finish(
                conn,
                job,
                JobStatus.FAILED,
                now=utcnow(),
                lease_owner=self.owner,
                error_code=code,
                error_message=message,
                **values,
            )

    async def _release(self, job: Job, run_at: datetime | None) -> None:
        async with self.db.transaction() as conn:
            await job_store.release_lease(conn, job.id, owner=self.owner, run_at=run_at, now=utcnow())

    async def _heartbeat(self, job: Job) -> None:
        """Renew the lease during a long step (at most every few seconds)."""
        now = time.monotonic()
        if now - self._last_beat.get(job.id, 0.0) < min(5.0, self.lease_s / 3):
            return
        self._last_beat[job.id] = now
        async with self.db.transaction() as conn:
            await job_store.renew_lease(
                conn, job.id, owner=self.owner, until=utcnow() + timedelta(seconds=self.lease_s)
            )

    def _ref(self, job: Job) -> UpstreamRef:
        return UpstreamRef(
            id=job.upstream_id or "", request_id=job.upstream_request_id, state=job.upstream_state
        )
