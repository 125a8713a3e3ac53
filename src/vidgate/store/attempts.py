"""Upstream submissions in the database, each recorded before it is sent.

An attempt starts ``pending``; it ends ``accepted`` (the upstream acknowledged it and
the job now tracks that upstream job), ``refused`` (provably never accepted: a 4xx,
5xx, 429 or a connection that never opened) or ``unknown`` (sent, but the answer was
lost or unreadable). A ``pending`` attempt found by another worker means its worker
died mid-call: to the next worker that is the same as ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.tables import upstream_attempts

OPEN_OUTCOMES = ("pending", "unknown")


@dataclass(frozen=True, slots=True)
class Attempt:
    job_id: str
    number: int
    provider: str
    route_index: int
    upstream_model: str | None
    upstream_key: str | None  # the label of the pool key that sent it
    outcome: str
    upstream_id: str | None
    error_code: str | None
    error_message: str | None
    possible_duplicate: bool
    started_at: datetime
    ended_at: datetime | None


def _attempt(row: Any) -> Attempt:
    return Attempt(**{k: row._mapping[k] for k in Attempt.__slots__})


async def start(
    conn: AsyncConnection,
    *,
    job_id: str,
    provider: str,
    route_index: int,
    upstream_model: str | None,
    possible_duplicate: bool,
    at: datetime,
    upstream_key: str | None = None,
) -> int:
    """Record a submission about to be sent; returns its number (1, 2, ... per job)."""
    last = (
        await conn.execute(
            select(func.max(upstream_attempts.c.number)).where(upstream_attempts.c.job_id == job_id)
        )
    ).scalar_one_or_none()
    number = int(last or 0) + 1
    await conn.execute(
        upstream_attempts.insert().values(
            job_id=job_id,
            number=number,
            provider=provider,
            route_index=route_index,
            upstream_model=upstream_model,
            upstream_key=upstream_key,
            outcome="pending",
            possible_duplicate=possible_duplicate,
            started_at=at,
        )
    )
    return number


async def end(
    conn: AsyncConnection,
    job_id: str,
    number: int,
    *,
    outcome: str,
    at: datetime,
    upstream_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    await conn.execute(
        update(upstream_attempts)
        .where(upstream_attempts.c.job_id == job_id, upstream_attempts.c.number == number)
        .values(
            outcome=outcome,
            upstream_id=upstream_id,
            error_code=error_code,
            error_message=error_message,
            ended_at=at,
        )
    )


async def open_attempt(conn: AsyncConnection, job_id: str) -> Attempt | None:
    """The job's latest attempt if its outcome is not known (pending or unknown)."""
    row = (
        await conn.execute(
            select(upstream_attempts)
            .where(upstream_attempts.c.job_id == job_id)
            .order_by(upstream_attempts.c.number.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    attempt = _attempt(row)
    return attempt if attempt.outcome in OPEN_OUTCOMES else None


async def of_job(conn: AsyncConnection, job_id: str) -> list[Attempt]:
    rows = await conn.execute(
        select(upstream_attempts)
        .where(upstream_attempts.c.job_id == job_id)
        .order_by(upstream_attempts.c.number)
    )
    return [_attempt(r) for r in rows]
