"""Jobs in the database: insert, read, list, guarded state changes and leasing.

A state change is an UPDATE whose WHERE clause lists the states the transition
table allows it to start from (``jobs.states.sources_of``): a stale or duplicate
writer matches no row and changes nothing, so a job settles exactly once.

Leasing: a worker claims due jobs by setting ``lease_owner``/``lease_expires_at``
(with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL). A worker that dies simply stops
renewing; once the lease has expired any other worker may claim the job again.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.domain.job import Job, MediaInfo
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import ACTIVE, JobStatus, sources_of
from vidgate.store.tables import jobs

_JOB_FIELDS = {f.name for f in fields(Job)}


def job_from_row(row: Any) -> Job:
    return _job_from_mapping(dict(row._mapping))


def _job_from_mapping(data: dict[str, Any]) -> Job:
    values = {k: v for k, v in data.items() if k in _JOB_FIELDS}
    values["status"] = JobStatus(data["status"])
    values["request"] = GenerationRequest.model_validate(data["request"])
    values["metadata"] = data["metadata"] or {}
    values["media"] = MediaInfo.from_json(data["media"]) if data.get("media") else None
    values["upstream_state"] = data.get("upstream_state") or {}
    values["outputs"] = data.get("outputs") or []
    return Job(**values)


# What a column the insert leaves out holds afterwards: its server default, else NULL.
_INSERTED_DEFAULTS: dict[str, Any] = {
    column.name: int(column.server_default.arg) if column.server_default is not None else None  # type: ignore[attr-defined]
    for column in jobs.c
}


async def insert_job(conn: AsyncConnection, **values: Any) -> Job:
    """Insert a job; returns it as the row now reads, without reading it back."""
    await conn.execute(jobs.insert(), values)
    return _job_from_mapping(_INSERTED_DEFAULTS | values)


# A poll's read, built once: building and hashing a fresh SELECT cost about as much CPU
# as running it on SQLite.
_JOB_BY_ID = select(jobs).where(jobs.c.id == bindparam("job_id"))
_OWN_JOB_BY_ID = _JOB_BY_ID.where(jobs.c.account_id == bindparam("account_id"), jobs.c.deleted_at.is_(None))


async def get_job(conn: AsyncConnection, job_id: str, *, account_id: str | None = None) -> Job | None:
    if account_id is None:
        result = await conn.execute(_JOB_BY_ID, {"job_id": job_id})
    else:
        result = await conn.execute(_OWN_JOB_BY_ID, {"job_id": job_id, "account_id": account_id})
    row = result.first()
    return job_from_row(row) if row else None


async def job_by_idempotency(conn: AsyncConnection, account_id: str, scope: str, key: str) -> Job | None:
    row = (
        await conn.execute(
            select(jobs).where(
                jobs.c.account_id == account_id,
                jobs.c.idempotency_scope == scope,
                jobs.c.idempotency_key == key,
            )
        )
    ).first()
    return job_from_row(row) if row else None


async def job_by_upstream(conn: AsyncConnection, provider: str, upstream_id: str) -> Job | None:
    row = (
        await conn.execute(select(jobs).where(jobs.c.provider == provider, jobs.c.upstream_id == upstream_id))
    ).first()
    return job_from_row(row) if row else None


async def list_jobs(
    conn: AsyncConnection,
    account_id: str,
    mode: str,
    *,
    limit: int,
    after: Job | None = None,
    newest_first: bool = True,
    status: list[str] | None = None,
    model: str | None = None,
    dialect: str | None = None,
) -> list[Job]:
    """A page of an account's jobs, keyset-paginated on (created_at, id)."""
    query = select(jobs).where(
        jobs.c.account_id == account_id, jobs.c.mode == mode, jobs.c.deleted_at.is_(None)
    )
    if status:
        query = query.where(jobs.c.status.in_(status))
    if model:
        query = query.where(jobs.c.model == model)
    if dialect:
        query = query.where(jobs.c.dialect == dialect)
    if after is not None:
        if newest_first:
            query = query.where(
                or_(
                    jobs.c.created_at < after.created_at,
                    and_(jobs.c.created_at == after.created_at, jobs.c.id < after.id),
                )
            )
        else:
            query = query.where(
                or_(
                    jobs.c.created_at > after.created_at,
                    and_(jobs.c.created_at == after.created_at, jobs.c.id > after.id),
                )
            )
    order = (jobs.c.created_at.desc(), jobs.c.id.desc()) if newest_first else (jobs.c.created_at, jobs.c.id)
    rows = await conn.execute(query.order_by(*order).limit(limit))
    return [job_from_row(r) for r in rows]


async def models_used(
    conn: AsyncConnection, account_id: str, mode: str, *, dialect: str | None = None
) -> list[str]:
    """The distinct catalog models of an account's jobs (deleted ones left out), sorted."""
    query = (
        select(jobs.c.model)
        .distinct()
        .where(jobs.c.account_id == account_id, jobs.c.mode == mode, jobs.c.deleted_at.is_(None))
    )
    if dialect:
        query = query.where(jobs.c.dialect == dialect)
    rows = await conn.execute(query.order_by(jobs.c.model))
    return [str(row[0]) for row in rows]


async def transition(
    conn: AsyncConnection,
    job_id: str,
    target: JobStatus,
    *,
    now: datetime,
    lease_owner: str | None = None,
    **values: Any,
) -> bool:
    """Move a job to ``target`` if the table allows it from its current state.

    With ``lease_owner`` the update also requires that the caller still holds the
    lease. Returns whether the row changed.
    """
    query = update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_([s.value for s in sources_of(target)]))
    if lease_owner is not None:
        query = query.where(jobs.c.lease_owner == lease_owner)
    if target.terminal:
        values.setdefault("completed_at", now)
        values.setdefault("run_at", None)
        values.setdefault("lease_owner", None)
        values.setdefault("lease_expires_at", None)
    result = await conn.execute(query.values(status=target.value, updated_at=now, **values))
    return result.rowcount == 1


async def update_job(
    conn: AsyncConnection,
    job_id: str,
    *,
    now: datetime,
    lease_owner: str | None = None,
    **values: Any,
) -> bool:
    """Change fields of a job without changing its state (``transition`` changes states)."""
    if "status" in values:
        raise TypeError("update_job cannot change a job's status; use transition()")
    query = update(jobs).where(jobs.c.id == job_id)
    if lease_owner is not None:
        query = query.where(jobs.c.lease_owner == lease_owner)
    result = await conn.execute(query.values(updated_at=now, **values))
    return result.rowcount == 1


async def lease_due(
    conn: AsyncConnection, *, owner: str, now: datetime, until: datetime, limit: int
) -> list[Job]:
    """Claim up to ``limit`` jobs whose next step is due and whose lease is free or lapsed."""
    due = (
        select(jobs.c.id)
        .where(
            # active jobs, and canceled ones still owing an upstream cancel
            jobs.c.status.in_([s.value for s in ACTIVE] + [JobStatus.CANCELED.value]),
            jobs.c.run_at <= now,
            or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        )
        .order_by(jobs.c.run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row[0] for row in await conn.execute(due)]
    if not ids:
        return []
    await conn.execute(
        update(jobs)
        .where(
            jobs.c.id.in_(ids),
            or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now),
        )
        .values(lease_owner=owner, lease_expires_at=until, attempts=jobs.c.attempts + 1)
    )
    rows = await conn.execute(select(jobs).where(jobs.c.id.in_(ids), jobs.c.lease_owner == owner))
    return [job_from_row(r) for r in rows]


async def active_count(conn: AsyncConnection) -> int:
    """How many jobs are not yet terminal."""
    query = select(func.count()).select_from(jobs).where(jobs.c.status.in_([s.value for s in ACTIVE]))
    return int((await conn.execute(query)).scalar_one())


async def renew_lease(conn: AsyncConnection, job_id: str, *, owner: str, until: datetime) -> bool:
    result = await conn.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.lease_owner == owner).values(lease_expires_at=until)
    )
    return result.rowcount == 1


async def release_lease(
    conn: AsyncConnection,
    job_id: str,
    *,
    owner: str,
    run_at: datetime | None,
    now: datetime,
    leased_run_at: datetime | None = None,
) -> None:
    """Hand the lease back, the next step due at ``run_at``.

    ``leased_run_at``: the job's ``run_at`` when it was leased. If it moved meanwhile (an
    upstream callback woke the job while this step was polling), the earlier of the two
    times wins: the step's answer predates the news, so the wake must not be lost.
    """
    next_run: Any = run_at
    if run_at is not None and leased_run_at is not None:
        planned = literal(run_at, jobs.c.run_at.type)
        woken = and_(jobs.c.run_at != leased_run_at, jobs.c.run_at < planned)
        next_run = case((woken, jobs.c.run_at), else_=planned)
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, run_at=next_run, updated_at=now)
    )


async def release_all(conn: AsyncConnection, *, owner: str, now: datetime) -> int:
    """Hand back every lease ``owner`` holds, due now (a worker shutting down)."""
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None, run_at=now, updated_at=now)
    )
    return int(result.rowcount or 0)


async def wake(conn: AsyncConnection, job_id: str, *, now: datetime) -> None:
    """Make an active job due now (an upstream callback arrived)."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status.in_([s.value for s in ACTIVE]))
        .values(run_at=now)
    )


async def media_due_for_purge(conn: AsyncConnection, *, now: datetime, limit: int) -> list[Job]:
    rows = await conn.execute(
        select(jobs)
        .where(
            jobs.c.media_expires_at <= now,
            jobs.c.media_deleted_at.is_(None),
            jobs.c.media.is_not(None),
        )
        .limit(limit)
    )
    return [job_from_row(r) for r in rows]
