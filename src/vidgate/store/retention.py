"""Media retention in the database: which jobs' media are past their time, and marking them purged.

A job's media expire ``retention_days`` after it completed: the account's own value
when it has one (``retention_overrides``), else the server default that was written as
``media_expires_at`` when the job succeeded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.tables import accounts, jobs


async def retention_overrides(conn: AsyncConnection) -> dict[str, int]:
    """Accounts with their own media retention: account id -> days."""
    query = select(accounts.c.id, accounts.c.retention_days).where(accounts.c.retention_days.is_not(None))
    return {r.id: int(r.retention_days) for r in await conn.execute(query)}


def _media_kept() -> Any:
    return and_(jobs.c.media.is_not(None), jobs.c.media_deleted_at.is_(None))


async def media_expired(
    conn: AsyncConnection, *, now: datetime, skip_accounts: list[str], limit: int
) -> list[str]:
    """Jobs whose media passed ``media_expires_at`` (accounts with an override left out)."""
    query = select(jobs.c.id).where(_media_kept(), jobs.c.media_expires_at <= now)
    if skip_accounts:
        query = query.where(jobs.c.account_id.not_in(skip_accounts))
    return [r[0] for r in await conn.execute(query.order_by(jobs.c.media_expires_at).limit(limit))]


async def media_completed_before(
    conn: AsyncConnection, *, account_id: str, cutoff: datetime, limit: int
) -> list[str]:
    """An account's jobs with media still kept that completed before ``cutoff``."""
    kept = and_(_media_kept(), jobs.c.account_id == account_id, jobs.c.completed_at <= cutoff)
    query = select(jobs.c.id).where(kept).order_by(jobs.c.completed_at).limit(limit)
    return [r[0] for r in await conn.execute(query)]


async def mark_media_purged(conn: AsyncConnection, job_id: str, *, now: datetime) -> bool:
    query = update(jobs).where(jobs.c.id == job_id, jobs.c.media_deleted_at.is_(None))
    result = await conn.execute(query.values(media_deleted_at=now, updated_at=now))
    return result.rowcount == 1
