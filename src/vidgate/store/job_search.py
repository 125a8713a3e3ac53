"""Finding jobs across every account, for the operator (the admin API and console).

Reads only; newest first, keyset-paginated on (created_at, id) like an account's own
listing. Every filter is optional and they combine with AND.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.domain.job import Job
from vidgate.store.jobs import job_from_row
from vidgate.store.tables import jobs, ledger_entries


@dataclass(frozen=True, slots=True)
class JobFilter:
    ids: tuple[str, ...] | None = None  # any of these ids (a pasted id, read in every dialect's form)
    account_id: str | None = None
    model: str | None = None
    provider: str | None = None
    status: tuple[str, ...] | None = None
    mode: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


async def search(
    conn: AsyncConnection, found: JobFilter, *, limit: int, before: Job | None = None
) -> list[Job]:
    query = select(jobs)
    if found.ids is not None:
        query = query.where(jobs.c.id.in_(found.ids))
    equal = ((jobs.c.account_id, found.account_id), (jobs.c.model, found.model),
             (jobs.c.provider, found.provider), (jobs.c.mode, found.mode))  # fmt: skip
    for column, value in equal:
        if value is not None:
            query = query.where(column == value)
    if found.status:
        query = query.where(jobs.c.status.in_(found.status))
    if found.since is not None:
        query = query.where(jobs.c.created_at >= found.since)
    if found.until is not None:
        query = query.where(jobs.c.created_at < found.until)
    if before is not None:
        at = before.created_at
        query = query.where(or_(jobs.c.created_at < at, and_(jobs.c.created_at == at, jobs.c.id < before.id)))
    rows = await conn.execute(query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit))
    return [job_from_row(r) for r in rows]


async def lock_job(conn: AsyncConnection, job_id: str) -> Job | None:
    """The job, its row locked for this transaction (first in the lock order)."""
    row = (await conn.execute(select(jobs).where(jobs.c.id == job_id).with_for_update())).first()
    return job_from_row(row) if row else None


async def adjusted_micros(conn: AsyncConnection, job_id: str) -> int:
    """The sum of the adjustments linked to a job (refunds are positive)."""
    total = await conn.scalar(
        select(func.coalesce(func.sum(ledger_entries.c.amount_micros), 0)).where(
            ledger_entries.c.job_id == job_id, ledger_entries.c.kind == "adjustment"
        )
    )
    return int(total or 0)


@dataclass(frozen=True, slots=True)
class UpstreamCost:
    """What the upstream charged for a job, as settlement recorded it (all None before)."""

    micros: int | None
    estimate_micros: int | None
    reported_micros: int | None
    units: str | None
    source: str | None


async def upstream_cost(conn: AsyncConnection, job_id: str) -> UpstreamCost:
    c = jobs.c
    row = (
        await conn.execute(
            select(
                c.upstream_cost_micros,
                c.upstream_cost_estimate_micros,
                c.upstream_cost_reported_micros,
                c.upstream_cost_units,
                c.upstream_cost_source,
            ).where(c.id == job_id)
        )
    ).first()
    if row is None:
        return UpstreamCost(None, None, None, None, None)
    return UpstreamCost(*row)
