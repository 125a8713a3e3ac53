"""Cheap reads for the metrics gauges: every query walks an index over the few rows
that are still in play (active jobs, unsent events, pending deliveries), never the
whole history.

- Active jobs: a job that is not terminal always has a ``run_at`` (the time its
  next step is due; ``None`` once it ends), so a range scan of ``ix_jobs_due`` over
  non-null ``run_at`` finds exactly the active jobs (plus the few canceled ones still
  owing an upstream cancel, dropped by the state filter).
- Unsent events: the primary key above the outbox cursor's watermark.
- Pending deliveries: ``ix_webhook_deliveries_due`` (status, next_attempt_at).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.domain.states import ACTIVE
from vidgate.store.delivery import outbox_cursors, outbox_seen, webhook_deliveries
from vidgate.store.tables import events, jobs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ACTIVE = sorted(s.value for s in ACTIVE)


@dataclass(frozen=True)
class ActiveGroup:
    state: str
    provider: str | None
    model: str
    count: int
    due: int
    oldest_due_at: datetime | None


async def active_jobs(conn: AsyncConnection, *, now: datetime) -> list[ActiveGroup]:
    """Active jobs grouped by (state, provider, model), with how many are due and since when."""
    is_due = jobs.c.run_at <= now
    query = (
        select(
            jobs.c.status,
            jobs.c.provider,
            jobs.c.model,
            func.count(),
            func.sum(case((is_due, 1), else_=0)),
            func.min(case((is_due, jobs.c.run_at), else_=None)),
        )
        # ``run_at >= epoch`` rather than ``IS NOT NULL``: a range every planner walks on the index.
        .where(jobs.c.run_at >= _EPOCH, jobs.c.status.in_(_ACTIVE))
        .group_by(jobs.c.status, jobs.c.provider, jobs.c.model)
    )
    groups = []
    for status, provider, model, count, due, oldest in await conn.execute(query):
        oldest_at = _aware(oldest)
        groups.append(ActiveGroup(status, provider, model, int(count), int(due or 0), oldest_at))
    return groups


async def unsent_events(conn: AsyncConnection, *, cursor: str) -> int:
    """Outbox events above the cursor's watermark that no sender has fanned out yet."""
    mark = await conn.scalar(select(outbox_cursors.c.last_event_id).where(outbox_cursors.c.name == cursor))
    seen = select(outbox_seen.c.event_id).where(outbox_seen.c.event_id == events.c.id).exists()
    query = select(func.count()).select_from(events).where(and_(events.c.id > int(mark or 0), ~seen))
    return int(await conn.scalar(query) or 0)


async def pending_deliveries(conn: AsyncConnection) -> int:
    query = (
        select(func.count()).select_from(webhook_deliveries).where(webhook_deliveries.c.status == "pending")
    )
    return int(await conn.scalar(query) or 0)


def _aware(value: object) -> datetime | None:
    """``min()`` over a CASE loses the column type: SQLite gives text, PostgreSQL a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
