"""Reading the business figures: jobs that ended in a window, grouped, with their money.

Three queries per report, each on SQLite and PostgreSQL alike:

* ``totals``: per group, counts by outcome and the sums of the charge and the upstream
  cost (``GROUP BY`` in SQL, on ``ix_jobs_completed``);
* ``refunds``: per group, admin adjustments tied to one of the group's jobs;
* ``timings``: one number per succeeded job (seconds from creation to completion), for
  the percentiles that SQL cannot compute portably.

Where SQLite and PostgreSQL spell a function differently (a UTC day, seconds between two
timestamps) it is one small SQL construct compiled per dialect.

A job belongs to the window by ``completed_at`` (``since <= completed_at < until``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Float, String, and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from vidgate.domain.states import JobStatus
from vidgate.store.tables import accounts, jobs, ledger_entries

GroupBy = Literal["day", "account", "model", "provider", "route"]
GROUPS: tuple[GroupBy, ...] = ("day", "account", "model", "provider", "route")
NO_PROVIDER = "(none)"  # jobs that never reached an upstream

_FAILED = (JobStatus.FAILED.value, JobStatus.EXPIRED.value)


class UtcDay(FunctionElement[str]):
    """``YYYY-MM-DD`` of a stored UTC timestamp."""

    type = String()
    inherit_cache = True


@compiles(UtcDay, "sqlite")
def _utc_day_sqlite(element: UtcDay, compiler: Any, **kw: Any) -> str:
    # SQLite keeps naive UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]".
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(UtcDay, "postgresql")
def _utc_day_postgresql(element: UtcDay, compiler: Any, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


class ElapsedSeconds(FunctionElement[float]):
    """Seconds from the first timestamp to the second."""

    type = Float()
    inherit_cache = True


@compiles(ElapsedSeconds, "sqlite")
def _elapsed_sqlite(element: ElapsedSeconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(ElapsedSeconds, "postgresql")
def _elapsed_postgresql(element: ElapsedSeconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


def _key(by: GroupBy) -> ColumnElement[str]:
    # Inline literals, not bound parameters: PostgreSQL matches the GROUP BY expression
    # to the selected one only when they are written the same.
    provider = func.coalesce(jobs.c.provider, literal_column(f"'{NO_PROVIDER}'"))
    keys: dict[GroupBy, ColumnElement[str]] = {
        "day": UtcDay(jobs.c.completed_at),
        "account": jobs.c.account_id,
        "model": jobs.c.model,
        "provider": provider,
        "route": provider.op("||")(literal_column("'/'")).op("||")(
            func.coalesce(jobs.c.upstream_model, literal_column("''"))
        ),
    }
    return keys[by].label("key")


@dataclass(frozen=True, slots=True)
class GroupTotals:
    key: str
    jobs: int
    succeeded: int
    failed: int
    revenue_micros: int
    upstream_cost_micros: int
    seconds: float  # of video delivered by the succeeded jobs


def _window(since: datetime, until: datetime, mode: str) -> ColumnElement[bool]:
    return and_(
        jobs.c.completed_at >= since,
        jobs.c.completed_at < until,
        jobs.c.mode == mode,
    )


async def totals(
    conn: AsyncConnection, by: GroupBy, *, since: datetime, until: datetime, mode: str
) -> list[GroupTotals]:
    key = _key(by)
    succeeded = jobs.c.status == JobStatus.SUCCEEDED.value
    delivered = jobs.c.media["duration_s"].as_float()  # JSON_EXTRACT / ->> by dialect
    query = (
        select(
            key,
            func.count().label("jobs"),
            func.sum(case((succeeded, 1), else_=0)).label("succeeded"),
            func.sum(case((jobs.c.status.in_(_FAILED), 1), else_=0)).label("failed"),
            func.sum(case((succeeded, func.coalesce(jobs.c.charged_micros, 0)), else_=0)).label("revenue"),
            func.sum(func.coalesce(jobs.c.upstream_cost_micros, 0)).label("cost"),
            func.sum(case((succeeded, func.coalesce(delivered, 0.0)), else_=0.0)).label("seconds"),
        )
        .where(_window(since, until, mode))
        .group_by(key)
        .order_by(key)
    )
    rows = await conn.execute(query)
    return [
        GroupTotals(
            key=str(row.key),
            jobs=int(row.jobs),
            succeeded=int(row.succeeded or 0),
            failed=int(row.failed or 0),
            revenue_micros=int(row.revenue or 0),
            upstream_cost_micros=int(row.cost or 0),
            seconds=float(row.seconds or 0.0),
        )
        for row in rows
    ]


async def refunds(
    conn: AsyncConnection, by: GroupBy, *, since: datetime, until: datetime, mode: str
) -> dict[str, int]:
    """Per group, what admin adjustments tied to its jobs gave back (positive: to the customer)."""
    key = _key(by)
    query = (
        select(key, func.sum(ledger_entries.c.amount_micros).label("refunded"))
        .select_from(jobs.join(ledger_entries, ledger_entries.c.job_id == jobs.c.id))
        .where(_window(since, until, mode), ledger_entries.c.kind == "adjustment")
        .group_by(key)
    )
    return {str(row.key): int(row.refunded or 0) for row in await conn.execute(query)}


async def timings(
    conn: AsyncConnection, by: GroupBy, *, since: datetime, until: datetime, mode: str
) -> list[tuple[str, float]]:
    """(group, seconds from creation to completion) of each succeeded job: percentiles need them all."""
    key = _key(by)
    elapsed = ElapsedSeconds(jobs.c.created_at, jobs.c.completed_at)
    query = select(key, elapsed).where(
        _window(since, until, mode), jobs.c.status == JobStatus.SUCCEEDED.value
    )
    return [(str(row[0]), float(row[1])) for row in await conn.execute(query)]


async def account_names(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await conn.execute(select(accounts.c.id, accounts.c.name).where(accounts.c.id.in_(list(ids))))
    return {str(row.id): str(row.name) for row in rows}
