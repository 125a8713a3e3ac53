"""The figures of a run, computed at the end from the database, the fake upstream and
what the clients saw; printed as a table and written to JSON.

Definitions (per gateway job unless said otherwise):

- lost: accepted by the API (the client holds its id) but not terminal at the end,
  or not in the database at all.
- settled twice: more than one capture or more than one release entry, or capture
  plus release taking more off ``held`` than the hold put on.
- stranded hold: a terminal job whose hold is not fully captured or released.
- ledger drift (µUSD, summed over accounts and modes): |available - sum of entry
  amounts| + |held - sum of entry held deltas| + |held - holds of active jobs|.
- upstream duplicates: submissions the fake accepted beyond the first, per job,
  matched by the job's unique prompt.
- upstream left running: a fake submission neither succeeded, failed nor canceled
  while its gateway job is terminal.
- upstream orphans: a fake submission not canceled that is not the one the gateway
  job ended with (it did work nobody is paid for).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from tests.fault.clients import TERMINAL, Load
from tests.fault.cluster import Deployment
from vidgate.store.engine import Database
from vidgate.store.tables import balances, jobs, ledger_entries

ENDED_UPSTREAM = frozenset({"succeeded", "failed", "completed", "canceled", "cancelled"})


async def _database_figures(url: str) -> dict[str, Any]:
    db = Database(url, null_pool=True)
    try:
        # one snapshot for every read: the workers may still be settling jobs meanwhile
        async with db.engine.connect() as plain:
            conn = await plain.execution_options(isolation_level="REPEATABLE READ")
            await conn.begin()
            job_rows = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(
                        jobs.c.id,
                        jobs.c.status,
                        jobs.c.error_code,
                        jobs.c.error_message,
                        jobs.c.held_micros,
                        jobs.c.account_id,
                        jobs.c.mode,
                        jobs.c.upstream_id,
                        jobs.c.attempts,
                    )
                )
            ]
            entries = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(
                        ledger_entries.c.job_id,
                        ledger_entries.c.kind,
                        ledger_entries.c.held_delta_micros,
                    ).where(ledger_entries.c.job_id.is_not(None))
                )
            ]
            sums = {
                (r[0], r[1]): (int(r[2]), int(r[3]))
                for r in await conn.execute(
                    select(
                        ledger_entries.c.account_id,
                        ledger_entries.c.mode,
                        func.coalesce(func.sum(ledger_entries.c.amount_micros), 0),
                        func.coalesce(func.sum(ledger_entries.c.held_delta_micros), 0),
                    ).group_by(ledger_entries.c.account_id, ledger_entries.c.mode)
                )
            }
            balance_rows = [
                (r[0], r[1], int(r[2]), int(r[3]))
                for r in await conn.execute(
                    select(
                        balances.c.account_id,
                        balances.c.mode,
                        balances.c.available_micros,
                        balances.c.held_micros,
                    )
                )
            ]
            attempts = await _attempts(conn)
    finally:
        await db.dispose()
    return {
        "jobs": job_rows,
        "entries": entries,
        "sums": sums,
        "balances": balance_rows,
        "attempts": attempts,
    }


async def _attempts(conn: Any) -> dict[str, Any]:
    """From ``upstream_attempts`` (its columns may still change): outcomes and the
    possible-duplicate metric, per job."""
    try:
        rows = (
            await conn.execute(text("SELECT job_id, outcome, possible_duplicate FROM upstream_attempts"))
        ).all()
    except Exception as exc:  # the table is being reworked in parallel; report, do not fail
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    by_job: dict[str, list[str]] = defaultdict(list)
    for job_id, outcome, _ in rows:
        by_job[job_id].append(outcome)
    return {
        "total": len(rows),
        "outcomes": dict(Counter(r[1] for r in rows)),
        "possible_duplicates": sum(1 for r in rows if r[2]),
        "unknown_jobs": sorted(j for j, outcomes in by_job.items() if "unknown" in outcomes),
    }


def _money(data: dict[str, Any], accepted: set[str]) -> dict[str, Any]:
    per_job: dict[str, Counter[str]] = defaultdict(Counter)
    held_by_job: dict[str, int] = defaultdict(int)
    settled_by_job: dict[str, int] = defaultdict(int)
    for entry in data["entries"]:
        per_job[entry["job_id"]][entry["kind"]] += 1
        if entry["kind"] == "hold":
            held_by_job[entry["job_id"]] += int(entry["held_delta_micros"])
        elif entry["kind"] in ("capture", "release"):
            settled_by_job[entry["job_id"]] += -int(entry["held_delta_micros"])
    status = {j["id"]: j["status"] for j in data["jobs"]}
    settled_twice = sorted(
        job_id
        for job_id, kinds in per_job.items()
        if kinds["capture"] > 1 or kinds["release"] > 1 or settled_by_job[job_id] > held_by_job[job_id]
    )
    stranded = sorted(
        job_id
        for job_id, held in held_by_job.items()
        if status.get(job_id) in TERMINAL and held != settled_by_job[job_id]
    )
    active_holds: dict[tuple[str, str], int] = defaultdict(int)
    for job in data["jobs"]:
        if job["status"] not in TERMINAL and job["id"] in held_by_job:
            active_holds[(job["account_id"], job["mode"])] += (
                held_by_job[job["id"]] - settled_by_job[job["id"]]
            )
    drift_entries = drift_active = 0
    for account_id, mode, available, held in data["balances"]:
        amount_sum, held_sum = data["sums"].get((account_id, mode), (0, 0))
        drift_entries += abs(available - amount_sum) + abs(held - held_sum)
        drift_active += abs(held - active_holds[(account_id, mode)])
    return {
        "settled_twice": len(settled_twice),
        "settled_twice_jobs": settled_twice[:20],
        "stranded_holds": len(stranded),
        "stranded_hold_jobs": stranded[:20],
        "ledger_drift_micros": drift_entries + drift_active,
        "drift_balance_vs_entries_micros": drift_entries,
        "drift_held_vs_active_holds_micros": drift_active,
        "jobs_without_hold": sum(1 for j in accepted if j not in held_by_job),
    }


def _upstream(
    deployment: Deployment,
    load: Load,
    job_status: dict[str, str],
    job_upstream: dict[str, str | None],
    unknown_jobs: set[str],
) -> dict[str, Any]:
    try:
        submissions, with_status = deployment.upstream_submissions()
    except Exception as exc:  # the fake died: the figures say so instead of hiding the rest
        return {"upstream_error": f"{type(exc).__name__}: {exc}"[:200]}
    job_of_prompt = {r.prompt: r.job_id for r in load.records}
    per_job: Counter[str] = Counter()
    foreign = 0
    left_running: list[str] = []
    left_running_unknown: list[str] = []
    orphans: list[str] = []
    for sub in submissions:
        job_id = job_of_prompt.get(sub.get("prompt") or "")
        if job_id is None:
            foreign += 1
            continue
        per_job[job_id] += 1
        ended = job_status.get(job_id) in TERMINAL
        canceled = bool(sub.get("canceled"))
        if with_status and ended and not canceled and str(sub.get("status")).lower() not in ENDED_UPSTREAM:
            (left_running_unknown if job_id in unknown_jobs else left_running).append(job_id)
        if ended and not canceled and sub.get("upstream_id") != job_upstream.get(job_id):
            orphans.append(job_id)
    duplicates = {job: n - 1 for job, n in per_job.items() if n > 1}
    return {
        "upstream_view": "/__fake/submissions" if with_status else "/__fake__/jobs (no status)",
        "upstream_submissions": sum(per_job.values()),
        "upstream_submissions_unmatched": foreign,
        "upstream_duplicates": sum(duplicates.values()),
        "upstream_duplicate_jobs": sorted(duplicates)[:20],
        "upstream_left_running": len(left_running) if with_status else None,
        "upstream_left_running_jobs": left_running[:20],
        "upstream_left_running_unknown_outcome": len(left_running_unknown) if with_status else None,
        "upstream_orphans": len(orphans),
    }


def collect(deployment: Deployment, load: Load, *, database_url: str, wall_s: float) -> dict[str, Any]:
    data = asyncio.run(_database_figures(database_url))
    accepted = {r.job_id for r in load.records if r.job_id}
    by_id = {j["id"]: j for j in data["jobs"]}
    statuses = Counter(by_id[j]["status"] if j in by_id else "missing" for j in accepted)
    reasons = Counter(
        f"{by_id[j]['status']}: {by_id[j]['error_code']}: {(by_id[j]['error_message'] or '')[:120]}"
        for j in accepted
        if j in by_id and by_id[j]["status"] in TERMINAL and by_id[j]["status"] != "succeeded"
    )
    lost = sorted(j for j in accepted if j not in by_id or by_id[j]["status"] not in TERMINAL)
    attempts = data["attempts"]
    unknown_jobs = set(attempts.get("unknown_jobs", []))
    figures: dict[str, Any] = {
        "jobs_requested": load.jobs,
        "jobs_accepted": len(accepted),
        "jobs_in_database": sum(1 for j in data["jobs"] if j["mode"] == "live"),
        "succeeded": statuses["succeeded"],
        "failed": statuses["failed"],
        "expired": statuses["expired"],
        "canceled": statuses["canceled"],
        "failure_reasons": dict(reasons.most_common()),
        "lost": len(lost),
        "lost_jobs": lost[:20],
        "succeeded_pct": round(100.0 * statuses["succeeded"] / len(accepted), 1) if accepted else 0.0,
        **_money(data, accepted),
        **load.summary(),
        **_upstream(
            deployment,
            load,
            {j["id"]: j["status"] for j in data["jobs"]},
            {j["id"]: j["upstream_id"] for j in data["jobs"]},
            unknown_jobs,
        ),
        "attempts_recorded": attempts.get("total"),
        "attempt_outcomes": attempts.get("outcomes"),
        "possible_duplicates_metric": attempts.get("possible_duplicates"),
        "attempts_error": attempts.get("error"),
        "wall_s": round(wall_s, 1),
    }
    return figures


def report(name: str, figures: dict[str, Any], path: Path) -> str:
    """Write the figures as JSON and return them as a printable table."""
    path.write_text(json.dumps(figures, indent=2, default=str))
    shown_items = {k: v for k, v in figures.items() if not k.startswith("_")}
    width = max(len(k) for k in shown_items)
    lines = [f"=== fault-survival figures: {name}  ({path})"]
    for key, value in shown_items.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            shown = ", ".join(map(str, value)) or "-"
        else:
            shown = "-" if value is None else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    return "\n".join(lines)
