"""The one owner of a job's life: every transition, progress update, event, lease and
settlement after submit goes through ``JobLifecycle``.

The worker asks; this module decides what is written, and writes it in one
transaction with everything that belongs with it. A terminal transition settles the
hold and appends the outbox event in the same transaction (``Database.run``, retried
whole on a deadlock), so money and state can never disagree. Every write that follows
a lease names the lease's owner: a worker whose lease lapsed changes nothing.

The attempts themselves (recorded before they are sent, ended with the upstream's
answer) are ``service.attempts``; the accepted answer is ended here, in the
transaction that moves the job to ``running``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.billing import holds
from vidgate.catalog.loader import Catalog
from vidgate.catalog.pricing import settle_amount
from vidgate.clock import utcnow
from vidgate.domain.job import Job, MediaInfo, ReportedCost
from vidgate.domain.states import JobStatus
from vidgate.money import format_usd
from vidgate.observability.metrics import Metrics
from vidgate.service import costs
from vidgate.store import accounts as account_store
from vidgate.store import attempts as attempt_store
from vidgate.store import events as event_store
from vidgate.store import jobs as job_store
from vidgate.store.changes import JobChanges
from vidgate.store.engine import Database

log = logging.getLogger(__name__)

EVENT_OF_STATUS = {
    JobStatus.SUCCEEDED: "video.completed",
    JobStatus.FAILED: "video.failed",
    JobStatus.EXPIRED: "video.expired",
    JobStatus.CANCELED: "video.canceled",
}


def job_fields(job: Job) -> dict[str, Any]:
    """The fields every log line about a job carries (``extra=``)."""
    return {
        "job_id": job.id,
        "account": job.account_id,
        "provider": job.provider,
        "upstream_id": job.upstream_id,
    }


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the upstream acknowledged for a submission."""

    provider: str
    route_index: int
    upstream_model: str | None
    upstream_id: str
    request_id: str | None
    state: Mapping[str, Any]
    upstream_key: str | None = None  # the label of the pool key that submitted it


class JobLifecycle:
    """Every visible change (state, progress) is announced inside its transaction and
    published to the waiters of ``changes`` after it committed (``store.changes``)."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        *,
        retention_days: int = 7,
        metrics: Metrics | None = None,
        changes: JobChanges | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.retention_days = retention_days
        self.metrics = metrics
        self.changes = changes if changes is not None else JobChanges()

    # ------------------------------------------------------------- leases

    async def lease_due(self, owner: str, *, lease_s: float, limit: int) -> list[Job]:
        now = utcnow()
        async with self.db.transaction() as conn:
            leased = await job_store.lease_due(
                conn, owner=owner, now=now, until=now + timedelta(seconds=lease_s), limit=limit
            )
        self._count_leases("leased", len(leased))
        return leased

    def _count_leases(self, kind: str, n: int = 1) -> None:
        if self.metrics is not None:
            for _ in range(n):
                self.metrics.lease_event(kind)

    async def renew(self, job_id: str, owner: str, *, lease_s: float) -> bool:
        async with self.db.transaction() as conn:
            renewed = await job_store.renew_lease(
                conn, job_id, owner=owner, until=utcnow() + timedelta(seconds=lease_s)
            )
        self._count_leases("renewed" if renewed else "lapsed")
        return renewed

    async def release(
        self, job_id: str, owner: str, *, run_at: datetime | None, leased_run_at: datetime | None = None
    ) -> None:
        """Let the lease go; the job's next step is due at ``run_at``, or sooner if it was
        woken since it was leased (``leased_run_at``, see ``job_store.release_lease``)."""
        async with self.db.transaction() as conn:
            await job_store.release_lease(
                conn, job_id, owner=owner, run_at=run_at, now=utcnow(), leased_run_at=leased_run_at
            )
        self._count_leases("released")

    async def release_all(self, owner: str) -> int:
        """Hand back every lease of ``owner`` at once, due now (a worker shutting down)."""
        async with self.db.transaction() as conn:
            handed = await job_store.release_all(conn, owner=owner, now=utcnow())
        self._count_leases("released", handed)
        return handed

    async def active_count(self) -> int:
        async with self.db.read() as conn:
            return await job_store.active_count(conn)

    async def wake_by_upstream(self, provider: str, upstream_id: str) -> Job | None:
        """An upstream said something changed: make its job due now (if it is still active)."""
        async with self.db.transaction() as conn:
            job = await job_store.job_by_upstream(conn, provider, upstream_id)
            if job is not None:
                await job_store.wake(conn, job.id, now=utcnow())
        return job

    # ------------------------------------------------------------- submit

    async def begin_submit(self, job: Job, owner: str) -> bool:
        """``queued -> submitting``; False when the job moved on meanwhile."""
        if job.status is JobStatus.SUBMITTING:
            return True
        async with self.db.transaction() as conn:
            moved = await job_store.transition(
                conn, job.id, JobStatus.SUBMITTING, now=utcnow(), lease_owner=owner
            )
            if moved:
                await self.changes.announce(conn, job.id)
        if moved:
            self.changes.publish(job.id)
        return moved

    async def accepted(self, job: Job, owner: str, number: int, found: Accepted) -> bool:
        """The upstream took the job: ``submitting -> running`` and the attempt accepted, together,
        with the catalog's estimate of what that route's upstream charges for it."""
        now = utcnow()
        estimate = (
            costs.estimate(
                self.catalog.get(job.model), job, provider=found.provider, model=found.upstream_model
            )
            if job.model in self.catalog
            else {}
        )

        async def write(conn: AsyncConnection) -> bool:
            moved = await job_store.transition(
                conn,
                job.id,
                JobStatus.RUNNING,
                now=now,
                lease_owner=owner,
                route_index=found.route_index,
                provider=found.provider,
                upstream_model=found.upstream_model,
                upstream_key=found.upstream_key,
                upstream_id=found.upstream_id,
                upstream_request_id=found.request_id,
                upstream_state=dict(found.state),
                attempts=0,
                **estimate,
            )
            await attempt_store.end(
                conn, job.id, number, outcome="accepted", at=now, upstream_id=found.upstream_id
            )
            if moved:
                await self.changes.announce(conn, job.id)
            return moved

        moved = await self.db.run(write)
        if moved:
            self.changes.publish(job.id)
            log.info(
                "job %s submitted to %s as %s (attempt %d)",
                job.id,
                found.provider,
                found.upstream_id,
                number,
                extra=job_fields(job) | {"provider": found.provider, "upstream_id": found.upstream_id},
            )
        return moved

    # ------------------------------------------------------------ running

    async def progress(
        self, job: Job, owner: str, *, progress: int, raw_status: str | None, eta_s: float | None
    ) -> None:
        """Record what the upstream said of a running job (and a progress event if it moved)."""
        now = utcnow()
        moved = False
        async with self.db.transaction() as conn:
            changed = await job_store.update_job(
                conn,
                job.id,
                now=now,
                lease_owner=owner,
                progress=progress,
                upstream_status=raw_status,
                eta_s=eta_s,
            )
            if changed and progress != job.progress:
                await event_store.append_event(
                    conn,
                    account_id=job.account_id,
                    job_id=job.id,
                    type="video.progress",
                    payload={"status": job.status.value, "progress": progress},
                    at=now,
                )
                await self.changes.announce(conn, job.id)
                moved = True
        if moved:
            self.changes.publish(job.id)

    async def outputs_ready(
        self,
        job: Job,
        owner: str,
        *,
        outputs: Sequence[Mapping[str, Any]],
        raw_status: str | None,
        reported: ReportedCost | None = None,
    ) -> Job | None:
        """``running -> fetching`` with the upstream's outputs (and what it said they cost);
        the fresh job, or None if it moved on."""
        told = self._reported(job, reported)
        async with self.db.transaction() as conn:
            moved = await job_store.transition(
                conn,
                job.id,
                JobStatus.FETCHING,
                now=utcnow(),
                lease_owner=owner,
                outputs=[dict(o) for o in outputs],
                upstream_status=raw_status,
                progress=99,
                **told,
            )
            if not moved:
                return None
            await self.changes.announce(conn, job.id)
            fresh = await job_store.get_job(conn, job.id)
        self.changes.publish(job.id)
        return fresh

    # ---------------------------------------------------------- the end

    async def succeed(self, job: Job, owner: str | None, media: MediaInfo) -> bool:
        return await self.finish(job.id, JobStatus.SUCCEEDED, owner=owner, media=media)

    async def fail(
        self,
        job: Job,
        owner: str | None,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        target: JobStatus = JobStatus.FAILED,
        reported: ReportedCost | None = None,
    ) -> bool:
        values: dict[str, Any] = {"upstream_request_id": request_id} if request_id else {}
        values.update(self._reported(job, reported))
        return await self.finish(
            job.id, target, owner=owner, error_code=code, error_message=message, **values
        )

    def _reported(self, job: Job, reported: ReportedCost | None) -> dict[str, Any]:
        if reported is None or job.model not in self.catalog:
            return {}
        return costs.reported(self.catalog.get(job.model), job, reported)

    async def finish(
        self,
        job_id: str,
        target: JobStatus,
        *,
        owner: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        media: MediaInfo | None = None,
        **values: Any,
    ) -> bool:
        """End a job in ``target`` with its settlement and event, in one (retried) transaction.

        Returns False (and changes nothing) if the job had already moved on.
        """
        now = utcnow()
        settled: dict[str, Any] = {}

        async def write(conn: AsyncConnection) -> bool:
            job = await job_store.get_job(conn, job_id)
            if job is None:
                return False
            captured = await self._end(
                conn,
                job,
                target,
                now=now,
                lease_owner=owner,
                error_code=error_code,
                error_message=error_message,
                media=media,
                **values,
            )
            settled.update(job=job, captured=captured)
            return captured is not None

        done = await self.db.run(write)
        if done:
            self.changes.publish(job_id)
        job, captured = settled.get("job"), settled.get("captured")
        if done and isinstance(job, Job) and isinstance(captured, int):
            self._log_end(job, target, error_code, error_message, media, captured)
        return done

    async def finish_in(
        self,
        conn: AsyncConnection,
        job: Job,
        target: JobStatus,
        *,
        now: datetime,
        lease_owner: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        media: MediaInfo | None = None,
        **values: Any,
    ) -> bool:
        """``finish`` inside the caller's transaction (which must be retried as a whole).

        Other processes hear of it on commit; this process's waiters once the caller,
        after its commit, calls ``changes.publish(job.id)``.
        """
        captured = await self._end(
            conn,
            job,
            target,
            now=now,
            lease_owner=lease_owner,
            error_code=error_code,
            error_message=error_message,
            media=media,
            **values,
        )
        return captured is not None

    async def _end(
        self,
        conn: AsyncConnection,
        job: Job,
        target: JobStatus,
        *,
        now: datetime,
        lease_owner: str | None,
        error_code: str | None,
        error_message: str | None,
        media: MediaInfo | None,
        **values: Any,
    ) -> int | None:
        """The terminal write; the amount captured, or None when the job had moved on."""
        capture = 0
        if job.model in self.catalog:
            told = values.get("upstream_cost_reported_micros", job.upstream_cost_reported_micros)
            cost = costs.settled(self.catalog.get(job.model), job, target, reported_micros=told)
            values["upstream_cost_micros"] = cost.micros
            if cost.source is not None:
                values["upstream_cost_source"] = cost.source
        if target is JobStatus.SUCCEEDED:
            spec = self.catalog.get(job.model)
            capture = settle_amount(
                spec,
                job.request,
                delivered_duration_s=media.duration_s if media else None,
                held_micros=job.held_micros,
            )
            account = await account_store.account_by_id(conn, job.account_id)
            keep_days = account.retention_days if account and account.retention_days else self.retention_days
            values.update(
                progress=100,
                media=media.to_json() if media else None,
                media_expires_at=now + timedelta(days=keep_days),
            )
        changed = await job_store.transition(
            conn,
            job.id,
            target,
            now=now,
            lease_owner=lease_owner,
            charged_micros=capture if target is JobStatus.SUCCEEDED else None,
            error_code=error_code,
            error_message=error_message,
            **values,
        )
        if not changed:
            return None
        await self.changes.announce(conn, job.id)
        await holds.settle(conn, job, capture=capture, at=now)
        payload: dict[str, Any] = {"status": target.value}
        if error_message:
            payload["error"] = {"code": error_code, "message": error_message}
        await event_store.append_event(
            conn,
            account_id=job.account_id,
            job_id=job.id,
            type=EVENT_OF_STATUS[target],
            payload=payload,
            at=now,
        )
        return capture

    def _log_end(
        self,
        job: Job,
        target: JobStatus,
        code: str | None,
        message: str | None,
        media: MediaInfo | None,
        captured: int,
    ) -> None:
        fields = job_fields(job)
        if self.metrics is not None:
            seconds = (utcnow() - job.created_at).total_seconds()
            self.metrics.job_finished(job.provider, job.model, target.value, seconds)
            if captured:
                self.metrics.money(job.mode, "captured", captured)
            if job.held_micros - captured:
                self.metrics.money(job.mode, "released", job.held_micros - captured)
        if target is JobStatus.SUCCEEDED:
            log.info(
                "job %s completed (%s s of video)", job.id, media.duration_s if media else "?", extra=fields
            )
        else:
            log.info("job %s %s: %s (%s)", job.id, target.value, message, code, extra=fields)
        released = job.held_micros - captured
        log.info(
            "job %s settled: captured $%s, released $%s",
            job.id,
            format_usd(captured),
            format_usd(released),
            extra=fields | {"captured_micros": captured, "released_micros": released, "mode": job.mode},
        )
