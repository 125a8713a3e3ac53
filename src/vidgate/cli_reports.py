"""``vidgate report``: the margin report, read from the database like the other admin commands.

The same figures as ``GET /admin/reports/margin`` (``vidgate.service.reports``): a
table for people (money to the cent), or ``--csv`` for a spreadsheet.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from vidgate.cli_common import DataDir, settings_from
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.errors import InvalidRequest
from vidgate.service.reports import (
    MarginRow,
    Report,
    ReportQuery,
    cents,
    margin_report,
    parse_query,
    report_csv,
)
from vidgate.startup import OperatorError, check_data_dir, check_database
from vidgate.store.engine import open_database
from vidgate.store.migrate import migrate

HEADINGS = (
    "key",
    "jobs",
    "ok",
    "failed",
    "fail%",
    "seconds",
    "revenue",
    "refunds",
    "upstream",
    "margin",
    "p50 s",
    "p95 s",
)


def report(
    by: Annotated[str, typer.Option(help="Group by day, account, model, provider or route.")] = "day",
    since: Annotated[
        str | None, typer.Option(help="From this ISO date or date-time (UTC); default 30 days ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to (not including) this ISO date or date-time.")
    ] = None,
    mode: Annotated[str, typer.Option(help="live, or test (what test jobs would have cost).")] = "live",
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV (one header row) instead of a table.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Revenue, upstream cost and margin of the jobs that ended, by day, account, model,
    provider or route. Margin = revenue - refunds - upstream cost."""
    try:
        query = parse_query(by, since, until, mode, now=utcnow())
    except InvalidRequest as exc:
        raise OperatorError(exc.message) from None
    result = asyncio.run(_read(settings_from(data_dir), query))
    print(report_csv(result) if as_csv else render(result), end="")


async def _read(settings: Settings, query: ReportQuery) -> Report:
    check_data_dir(settings)
    await check_database(settings)
    db = open_database(settings, null_pool=True)
    try:
        await migrate(db)
        return await margin_report(db, query)
    finally:
        await db.dispose()


def render(result: Report) -> str:
    """The report as an aligned text table with a totals line."""
    q = result.query
    head = f"margin by {q.by}, {q.mode} jobs ended {q.since.isoformat()} .. {q.until.isoformat()}\n"
    if not result.rows:
        return head + "no jobs ended in this window\n"
    lines = [HEADINGS, *(_cells(row, row.label or row.key) for row in result.rows)]
    lines.append(_cells(result.totals, "total"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADINGS))]
    text = ["  ".join(_aligned(line, widths)) for line in lines]
    text.insert(len(text) - 1, "-" * len(text[0]))
    return head + "\n".join(text) + "\n"


def _aligned(line: tuple[str, ...], widths: list[int]) -> list[str]:
    return [
        cell.ljust(w) if i == 0 else cell.rjust(w)
        for i, (cell, w) in enumerate(zip(line, widths, strict=True))
    ]


def _cells(row: MarginRow, key: str) -> tuple[str, ...]:
    return (
        key,
        str(row.jobs),
        str(row.succeeded),
        str(row.failed),
        f"{row.failure_rate * 100:.1f}",
        f"{row.seconds:g}",
        cents(row.revenue_micros),
        cents(row.refunds_micros),
        cents(row.upstream_cost_micros),
        cents(row.margin_micros),
        "-" if row.p50_s is None else f"{row.p50_s:g}",
        "-" if row.p95_s is None else f"{row.p95_s:g}",
    )
