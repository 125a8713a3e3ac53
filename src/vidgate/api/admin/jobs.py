"""Admin: find any job, read its whole life, and cancel, retry or refund it.

* ``GET /admin/jobs``: search by id in any dialect's form (``q``: the native id, which
  is also Thalam's task id and Kyma's job id, a Venice queue id or Apiframe job id,
  a MiniMax task or file number), account, model, provider, state and creation time.
* ``GET /admin/jobs/{id}``: the job, its events, upstream attempts, webhook deliveries
  with their attempts, ledger entries and money (charged, refunds, upstream cost, margin).
* ``POST /admin/jobs/{id}/cancel``: as the client's own cancel (the hold is released).
* ``POST /admin/jobs/{id}/retry``: a job that ended without a video (failed, expired or
  canceled) is submitted again as a NEW job with the same request, account and key.
  The old job's money is already settled (its hold released) and stays as it is; the
  new job places its own hold like any submit, so it can be refused for funds or a
  spend cap. A second retry within the idempotency window returns the first one
  (key ``<id>`` in scope ``admin-retry``), so a double click never buys two videos.
* ``POST /admin/jobs/{id}/refund``: an ``adjustment`` ledger entry linked to the job,
  never more than was captured minus earlier refunds.

Every change is recorded in the audit trail in the transaction that makes it, except
retry's: the new job is created by ``JobService.submit`` (its own transaction), and
the audit entry follows it at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.api.admin import job_view
from vidgate.api.admin.access import Admin
from vidgate.api.admin.audit_log import audit_json
from vidgate.api.context import Services
from vidgate.api.dialects import job_ids_for
from vidgate.api.native import ledger_entry
from vidgate.billing.refunds import Refunded, refund_job
from vidgate.clock import utcnow
from vidgate.domain.job import Job, Principal
from vidgate.domain.states import JobStatus
from vidgate.errors import Conflict, InvalidRequest, NotFound
from vidgate.money import format_usd, micros_from_usd
from vidgate.service.jobs import Idempotency
from vidgate.store import accounts as account_store
from vidgate.store import attempts as attempt_store
from vidgate.store import audit, job_search
from vidgate.store import delivery as delivery_store
from vidgate.store import events as event_store
from vidgate.store import jobs as job_store
from vidgate.store import ledger as ledger_store

router = APIRouter(prefix="/admin", tags=["admin"])

RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELED})
STATES = {s.value for s in JobStatus}


class Refund(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal = Field(gt=0, le=Decimal("1000000"))
    reason: str = Field(min_length=1, max_length=500)


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


def _utc(value: datetime | None, param: str) -> datetime | None:
    """UTC; a time without an offset is read as UTC."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{param} is out of range", param=param) from None


def _states(status: str | None) -> tuple[str, ...] | None:
    if not status:
        return None
    asked = tuple(s.strip() for s in status.split(",") if s.strip())
    unknown = [s for s in asked if s not in STATES]
    if unknown:
        raise InvalidRequest(
            f"unknown job state {unknown[0]!r}; one of: {', '.join(sorted(STATES))}", param="status"
        )
    return asked


async def _job(svc: Services, job_id: str) -> Job:
    async with svc.db.read() as conn:
        job = await job_store.get_job(conn, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}", param="id")
    return job


@router.get("/jobs")
async def search_jobs(
    caller: Admin,
    q: Annotated[str | None, Query(max_length=200)] = None,
    account: Annotated[str | None, Query(max_length=200)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    provider: Annotated[str | None, Query(max_length=60)] = None,
    status: Annotated[str | None, Query(max_length=200)] = None,
    mode: Annotated[str | None, Query(pattern="^(live|test)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """``account`` is an account id or name; ``status`` may list several states, comma-separated."""
    svc = caller.svc
    async with svc.db.read() as conn:
        account_id = None
        if account:
            row = await account_store.account_by_id(conn, account) or await account_store.account_by_name(
                conn, account
            )
            if row is None:
                raise NotFound(f"no account {account!r}", param="account")
            account_id = row.id
        cursor = None
        if before:
            cursor = await job_store.get_job(conn, before)
            if cursor is None:
                raise NotFound(f"no job {before!r} to page before", param="before")
        found = job_search.JobFilter(
            ids=tuple(job_ids_for(q.strip())) if q and q.strip() else None,
            account_id=account_id,
            model=model or None,
            provider=provider or None,
            status=_states(status),
            mode=mode,
            since=_utc(since, "since"),
            until=_utc(until, "until"),
        )
        rows = await job_search.search(conn, found, limit=limit + 1, before=cursor)
    page = rows[:limit]
    return {"object": "list", "data": [job_view.job_summary(j) for j in page], "has_more": len(rows) > limit}


@router.get("/jobs/{job_id}")
async def job_life(job_id: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    async with svc.db.read() as conn:
        job = await job_store.get_job(conn, job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", param="id")
        account = await account_store.account_by_id(conn, job.account_id)
        events = await event_store.events_of_job(conn, job.id)
        attempts = await attempt_store.of_job(conn, job.id)
        deliveries = await delivery_store.list_deliveries(
            conn, job.account_id, job.mode, limit=200, job_id=job.id
        )
        delivery_attempts = await delivery_store.attempts_of(conn, [d.id for d in deliveries])
        entries = await ledger_store.job_entries(conn, job.id)
        cost = await job_search.upstream_cost(conn, job.id)
        refunded = await job_search.adjusted_micros(conn, job.id)
        trail = await audit.recent(conn, limit=50, target=job.id)
    return {
        "object": "admin.job",
        "job": job_view.job_detail(job),
        "account": {"id": job.account_id, "name": account.name if account else None},
        "money": job_view.money(job, cost, refunded),
        "events": [job_view.event_json(e) for e in events],
        "upstream_attempts": [job_view.attempt_json(a) for a in attempts],
        "webhooks": [job_view.delivery_json(d, delivery_attempts[d.id]) for d in reversed(deliveries)],
        "ledger": [ledger_entry(e) for e in entries],
        "audit": [audit_json(e) for e in trail],
    }


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(job_id: str, caller: Admin, body: Reason | None = None) -> dict[str, Any]:
    svc = caller.svc
    reason = (body.reason if body else "") or "canceled by an operator"
    now = utcnow()

    async def write(conn: AsyncConnection) -> Job:
        job = await job_store.get_job(conn, job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", param="id")
        if job.terminal:
            raise Conflict(f"job {job_id!r} has already ended ({job.status.value})", code="invalid_state")
        # Still due when the upstream may have it: the worker (the only caller of providers) cancels it there.
        run_at = now if job.upstream_id or job.status is JobStatus.SUBMITTING else None
        done = await svc.lifecycle.finish_in(
            conn, job, JobStatus.CANCELED, now=now, error_code="canceled", error_message=reason, run_at=run_at
        )
        if not done:
            raise Conflict(f"job {job_id!r} ended before it could be canceled", code="invalid_state")
        await audit.record(conn, actor=caller.actor, action="job.cancel", target=job.id, at=now,
                           details={"reason": reason, "was": job.status.value})  # fmt: skip
        return job

    await svc.db.run(write)
    svc.wake_worker()
    return job_view.job_summary(await _job(svc, job_id))


@router.post("/jobs/{job_id}/retry", status_code=201)
async def retry_job(job_id: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    job = await _job(svc, job_id)
    if job.status not in RETRYABLE:
        raise Conflict(
            f"only a failed, expired or canceled job can be retried; {job_id!r} is {job.status.value}",
            code="invalid_state",
        )
    async with svc.db.read() as conn:
        account = await account_store.account_by_id(conn, job.account_id)
        key = await account_store.key_by_id(conn, job.key_id)
    if account is None or key is None or key.revoked_at is not None:
        raise Conflict(
            f"the API key job {job_id!r} was made with is gone or revoked; submit a new job instead",
            code="key_revoked",
        )
    principal = Principal(account.id, account.name, key.id, job.mode)
    submitted = await svc.jobs.submit(
        principal,
        job.request,
        dialect=job.dialect,
        idempotency=Idempotency(key=job.id, scope="admin-retry"),
    )
    if submitted.created:
        async with svc.db.transaction() as conn:
            await audit.record(conn, actor=caller.actor, action="job.retry", target=job.id, at=utcnow(),
                               details={"new_job_id": submitted.job.id})  # fmt: skip
    return {**job_view.job_summary(submitted.job), "retry_of": job.id, "created": submitted.created}


@router.post("/jobs/{job_id}/refund", status_code=201)
async def refund(job_id: str, body: Refund, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    amount = micros_from_usd(body.amount)
    now = utcnow()

    async def write(conn: AsyncConnection) -> Refunded:
        done = await refund_job(conn, job_id, amount=amount, reason=body.reason, at=now)
        await audit.record(conn, actor=caller.actor, action="job.refund", target=job_id, at=now,
                           details={"amount": format_usd(amount), "reason": body.reason})  # fmt: skip
        return done

    done = await svc.db.run(write)
    return {
        "object": "refund",
        "job_id": done.job_id,
        "amount": format_usd(done.amount_micros),
        "refunded": format_usd(done.refunded_micros),
        "refundable": format_usd(done.refundable_micros),
        "reason": body.reason,
    }
