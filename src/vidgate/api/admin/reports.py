"""Admin: the margin report (``GET /admin/reports/margin``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from vidgate.api.admin.access import Admin
from vidgate.clock import utcnow
from vidgate.errors import InvalidRequest
from vidgate.service.reports import margin_report, parse_query, report_csv, report_json

router = APIRouter(prefix="/admin/reports", tags=["admin"])


@router.get("/margin", response_model=None)
async def margin(
    caller: Admin,
    by: str = "day",
    since: str | None = None,
    until: str | None = None,
    mode: str = "live",
    format: str = "json",
) -> dict[str, Any] | Response:
    """Revenue, upstream cost and margin of the jobs that ended in ``[since, until)``.

    ``by``: ``day`` (UTC), ``account``, ``model``, ``provider`` or ``route``
    (``provider/upstream_model``). ``since``/``until``: ISO 8601 dates or date-times
    (UTC unless they say otherwise; default: the 30 days up to now). ``mode``: ``live``
    or ``test`` (test-mode jobs show what they would have cost upstream).
    ``format``: ``json`` or ``csv`` (a header row, then one row per group).

    Per group: ``jobs`` that ended, ``succeeded``, ``failed`` (failed or expired; the
    rest were canceled), ``failure_rate`` = failed / jobs, ``seconds`` of video
    delivered; ``revenue``: charges captured from customers; ``refunds``: admin refunds
    tied to the group's jobs (ledger adjustments with a job; released holds are not
    refunds, a failed job is never charged); ``upstream_cost``: what the upstreams
    charged (their reported cost, else the catalog's estimate; a failed job the upstream
    still billed counts); ``margin`` = revenue - refunds - upstream cost; ``p50_s`` and
    ``p95_s``: seconds from submission to completion of the succeeded jobs. Money is
    micro-USD (``*_micros``) with a cents string beside it.
    """
    if format not in ("json", "csv"):
        raise InvalidRequest(f"format must be json or csv, not {format!r}", param="format")
    query = parse_query(by, since, until, mode, now=utcnow())
    report = await margin_report(caller.svc.db, query)
    if format == "csv":
        filename = f"margin-{query.by}-{query.since.date()}-{query.until.date()}.csv"
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report_json(report)
