"""Cheap reads for the metrics gauges: every query walks an index over the few rows
that are still in play (active jobs, unsent events, pending deliveries), never the
whole history.

- Active jobs: a job that is not terminal always has a ``run_at`` (the time its
  next step is due; ``None`` once it ends), so a range scan of ``ix_jobs_due`` over
  non-null ``run_at`` finds exactly the active jobs (plus the few canceled ones still
  owing an upstream cancel, dropped here by state). Due jobs: the same index, up to now.
- Unsent events: the primary key above the outbox cursor's watermark.
- Pending deliveries: ``ix_webhook_deliveries_due`` (status, next_attempt_at).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, bindparam, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.domain.states import ACTIVE
from vidgate.store.delivery import outbox_cursors, outbox_seen, webhook_deliveries
from vidgate.store.tables import events, jobs

_ACTIVE = frozenset(s.value for s in ACTIVE)


@dataclass(frozen=True)
class ActiveGroup:
    state: str
    provider: str | None
    model: str
    count: int


@dataclass(frozen=True)
class Gauges:
    active: list[ActiveGroup]
    due: int  # steps due now (active jobs, and canceled ones owing an upstream cancel)
    oldest_due_at: datetime | None
    unsent_events: int  # outbox events not yet fanned out
    pending_deliveries: int


def _statement() -> Any:
    """Everything in ONE statement, built once (a round trip, and building a statement,
    cost more than these indexed reads)."""
    groups = (
        select(
            literal("a").label("part"),
            jobs.c.status.label("state"),
            jobs.c.provider.label("provider"),
            jobs.c.model.label("model"),
            func.count().label("n"),
            null().label("at"),
        )
        .where(jobs.c.run_at.is_not(None))
        .group_by(jobs.c.status, jobs.c.provider, jobs.c.model)
    )
    now = bindparam("now", type_=jobs.c.run_at.type)
    due = select(literal("d"), null(), null(), null(), func.count(), func.min(jobs.c.run_at)).where(
        jobs.c.run_at <= now
    )
    cursor = bindparam("cursor", type_=String())
    mark = func.coalesce(
        select(outbox_cursors.c.last_event_id).where(outbox_cursors.c.name == cursor).scalar_subquery(), 0
    )
    seen = select(outbox_seen.c.event_id).where(outbox_seen.c.event_id == events.c.id).exists()
    unsent = select(literal("e"), null(), null(), null(), func.count(), null()).where(
        events.c.id > mark, ~seen
    )
    pending = select(literal("w"), null(), null(), null(), func.count(), null()).where(
        webhook_deliveries.c.status == "pending"
    )
    return union_all(groups, due, unsent, pending)


_GAUGES = _statement()


async def read_gauges(conn: AsyncConnection, *, now: datetime, cursor: str) -> Gauges:
    rows = (await conn.execute(_GAUGES, {"now": now, "cursor": cursor})).all()
    active, counts, oldest = [], {"d": 0, "e": 0, "w": 0}, None
    for part, state, provider, model, n, at in rows:
        if part == "a":
            if state in _ACTIVE:  # canceled jobs owing an upstream cancel also have a run_at
                active.append(ActiveGroup(state, provider, model, int(n)))
        else:
            counts[part] = int(n or 0)
            if part == "d":
                oldest = _aware(at)
    return Gauges(active, counts["d"], oldest, counts["e"], counts["w"])


def _aware(value: object) -> datetime | None:
    """A time read through a UNION loses its column type: SQLite gives text, PostgreSQL a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
