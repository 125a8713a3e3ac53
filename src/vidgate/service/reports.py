"""The margin report: what jobs earned, what their upstreams cost, and how they went.

One row per group (``by``: day, account, model, provider or route) of the jobs that
ended in ``[since, until)`` in one mode, and the totals over all of them:

* ``jobs``: jobs that ended; ``succeeded``; ``failed`` (failed or expired; the rest
  were canceled); ``failure_rate`` = failed / jobs;
* ``seconds``: seconds of video delivered by the succeeded jobs;
* ``revenue``: what was captured from the customers (charges of succeeded jobs);
* ``refunds``: admin refunds (ledger adjustments) tied to the group's jobs; released
  holds are not refunds: a job that failed was never charged;
* ``upstream_cost``: what the upstreams charged (``vidgate.service.costs``: the reported
  figure, else the catalog's estimate; a failed job the upstream still billed counts);
* ``margin`` = revenue - refunds - upstream cost;
* ``p50_s`` / ``p95_s``: time from submission to completion of the succeeded jobs.

Money is integer micro-USD (``*_micros``) with a cents string beside it (``"$0.01"``).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from vidgate.errors import InvalidRequest
from vidgate.money import usd
from vidgate.store import reports as report_store
from vidgate.store.engine import Database
from vidgate.store.reports import GROUPS, GroupBy, GroupTotals

MODES = ("live", "test")
DEFAULT_DAYS = 30
COLUMNS = (
    "key",
    "jobs",
    "succeeded",
    "failed",
    "seconds",
    "revenue_micros",
    "revenue",
    "upstream_cost_micros",
    "upstream_cost",
    "margin_micros",
    "margin",
    "refunds_micros",
    "refunds",
    "failure_rate",
    "p50_s",
    "p95_s",
)


@dataclass(frozen=True, slots=True)
class ReportQuery:
    by: GroupBy
    since: datetime
    until: datetime
    mode: str


@dataclass(frozen=True, slots=True)
class MarginRow:
    key: str
    jobs: int
    succeeded: int
    failed: int
    seconds: float
    revenue_micros: int
    upstream_cost_micros: int
    refunds_micros: int
    p50_s: float | None
    p95_s: float | None
    label: str | None = None  # an account's name (by account)

    @property
    def margin_micros(self) -> int:
        return self.revenue_micros - self.refunds_micros - self.upstream_cost_micros

    @property
    def failure_rate(self) -> float:
        return round(self.failed / self.jobs, 3) if self.jobs else 0.0


@dataclass(frozen=True, slots=True)
class Report:
    query: ReportQuery
    rows: tuple[MarginRow, ...]
    totals: MarginRow


def parse_query(
    by: str | None, since: str | None, until: str | None, mode: str | None, *, now: datetime
) -> ReportQuery:
    """The report asked for, from text (API query or CLI options); InvalidRequest says what is wrong."""
    group = by or "day"
    if group not in GROUPS:
        raise InvalidRequest(f"by must be one of {', '.join(GROUPS)}, not {group!r}", param="by")
    kind = mode or "live"
    if kind not in MODES:
        raise InvalidRequest(f"mode must be live or test, not {kind!r}", param="mode")
    end = parse_time(until, "until") if until else now
    try:
        start = parse_time(since, "since") if since else end - timedelta(days=DEFAULT_DAYS)
    except OverflowError:
        raise InvalidRequest("until is too early to report the 30 days before it", param="until") from None
    if start >= end:
        raise InvalidRequest(
            f"since ({start.isoformat()}) must be before until ({end.isoformat()})", param="since"
        )
    return ReportQuery(group, start, end, kind)


def parse_time(text: str, param: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or date-time (UTC when it names no zone)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{param} must be an ISO 8601 date or date-time (2026-11-01, 2026-11-01T12:00:00Z), not {text!r}",
            param=param,
        ) from None


async def margin_report(db: Database, query: ReportQuery) -> Report:
    """One row per group of the jobs that ended in the window, and the totals (one read)."""
    since, until, mode = query.since, query.until, query.mode
    async with db.read() as conn:
        groups = await report_store.totals(conn, query.by, since=since, until=until, mode=mode)
        refunded = await report_store.refunds(conn, query.by, since=since, until=until, mode=mode)
        timed = await report_store.timings(conn, query.by, since=since, until=until, mode=mode)
        names = (
            await report_store.account_names(conn, [g.key for g in groups]) if query.by == "account" else {}
        )
    waits: dict[str, list[float]] = defaultdict(list)
    for key, seconds in timed:
        waits[key].append(seconds)
    rows = tuple(_row(g, refunded.get(g.key, 0), waits.get(g.key, []), names.get(g.key)) for g in groups)
    every = GroupTotals(
        key="",
        jobs=sum(g.jobs for g in groups),
        succeeded=sum(g.succeeded for g in groups),
        failed=sum(g.failed for g in groups),
        revenue_micros=sum(g.revenue_micros for g in groups),
        upstream_cost_micros=sum(g.upstream_cost_micros for g in groups),
        seconds=sum(g.seconds for g in groups),
    )
    totals = _row(every, sum(refunded.values()), [seconds for _, seconds in timed], None)
    return Report(query, rows, totals)


def _row(group: GroupTotals, refunds: int, waits: list[float], label: str | None) -> MarginRow:
    waits.sort()
    return MarginRow(
        key=group.key,
        jobs=group.jobs,
        succeeded=group.succeeded,
        failed=group.failed,
        seconds=round(group.seconds, 3),
        revenue_micros=group.revenue_micros,
        upstream_cost_micros=group.upstream_cost_micros,
        refunds_micros=refunds,
        p50_s=percentile(waits, 0.50),
        p95_s=percentile(waits, 0.95),
        label=label,
    )


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile of sorted values, interpolated between neighbours."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 1)


def cents(micros: int) -> str:
    """Money for people, to the cent: ``"$0.01"``, ``"-$1.25"``."""
    amount = usd(abs(micros)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{'-' if micros < 0 else ''}${amount:,f}"


def row_json(row: MarginRow, *, with_key: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"key": row.key} if with_key else {}
    if with_key and row.label is not None:
        data["label"] = row.label
    data.update(
        jobs=row.jobs,
        succeeded=row.succeeded,
        failed=row.failed,
        seconds=row.seconds,
        revenue_micros=row.revenue_micros,
        revenue=cents(row.revenue_micros),
        upstream_cost_micros=row.upstream_cost_micros,
        upstream_cost=cents(row.upstream_cost_micros),
        margin_micros=row.margin_micros,
        margin=cents(row.margin_micros),
        refunds_micros=row.refunds_micros,
        refunds=cents(row.refunds_micros),
        failure_rate=row.failure_rate,
        p50_s=row.p50_s,
        p95_s=row.p95_s,
    )
    return data


def report_json(report: Report) -> dict[str, Any]:
    return {
        "object": "report",
        "by": report.query.by,
        "since": report.query.since.isoformat(),
        "until": report.query.until.isoformat(),
        "mode": report.query.mode,
        "rows": [row_json(row) for row in report.rows],
        "totals": row_json(report.totals, with_key=False),
    }


def report_csv(report: Report) -> str:
    """The rows as CSV, with a header row of ``COLUMNS`` (money in micro-USD and in cents)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: "" if v is None else v for k, v in row_json(row).items()})
    return out.getvalue()
