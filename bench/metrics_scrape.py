"""What one ``GET /metrics`` costs the server, with 10,000 jobs in the store.

    python bench/metrics_scrape.py [--db sqlite,postgres] [--jobs 10000] [--active 500]
                                   [--scrapes 300] [--json out.json]

For each database a scratch store is seeded with ``--jobs`` jobs (``--active`` of them
not finished, spread over states, providers and models; the rest succeeded or
failed), as many outbox events and webhook deliveries (a few still pending). Then a
``vidgate serve --no-worker`` process is started on a loopback port, scraped
``--scrapes`` times one after the other, and its CPU time (user + system, from
``/proc``) divided by the number of scrapes.

Two rows per database, each with the store gauges read by the server's background
timer (``VIDGATE_METRICS_REFRESH_S``, 15 s by default: a scrape renders the last
reading and never queries the database):

- ``--active`` jobs active (a healthy store has few);
- every one of the jobs active (the worst case for the timer's query, which walks the
  active jobs; it does not change what a scrape costs).

With PostgreSQL the queries execute in the database's own process: the ``server CPU``
column is vidgate's share only, and ``pg backend CPU`` is the rest (summed over the
database's backends, from ``pg_stat_activity`` pids and ``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import (
    bench_env,
    free_port,
    machine,
    make_key,
    parse_dbs,
    percentile,
    print_machine,
    print_table,
    proc_sample,
    process,
    scratch_database,
    temp_folder,
    vidgate_command,
    wait_http,
    write_json,
)

MODELS = [("sora-2", "openai"), ("kling-3-pro", "kling"), ("veo-3", "vertex"), ("wan-2.5", "fal")]
ACTIVE_STATES = ["queued", "submitting", "running", "fetching"]


async def seed(url: str, *, jobs: int, active: int) -> str:
    """``jobs`` jobs (``active`` of them unfinished), one event and one delivery per job."""
    from sqlalchemy import update

    from vidgate.store.delivery import outbox_cursors, webhook_deliveries
    from vidgate.store.engine import Database
    from vidgate.store.tables import events
    from vidgate.store.tables import jobs as jobs_table

    key, principal = await make_key(url, "bench")
    now = datetime.now(UTC)
    rng = random.Random(7)
    job_rows, event_rows, delivery_rows = [], [], []
    for n in range(jobs):
        model, provider = MODELS[n % len(MODELS)]
        is_active = n < active
        created = now - timedelta(seconds=rng.uniform(1, 86400))
        status = ACTIVE_STATES[n % len(ACTIVE_STATES)] if is_active else rng.choice(["succeeded", "failed"])
        job_id = f"video_{n:032x}"
        job_rows.append(
            {
                "id": job_id, "account_id": principal.account_id, "key_id": principal.key_id,
                "mode": "test", "dialect": "native", "model": model, "status": status, "progress": 0,
                "request": {"prompt": "bench"}, "metadata": {}, "estimated_micros": 100_000,
                "held_micros": 100_000, "charged_micros": None if is_active else 100_000,
                "provider": None if status == "queued" else provider, "created_at": created,
                "updated_at": created, "deadline_at": created + timedelta(hours=1),
                "completed_at": None if is_active else created + timedelta(seconds=60),
                # a third of the active jobs are due now, the rest later
                "run_at": (now - timedelta(seconds=rng.uniform(0, 30)) if n % 3 == 0
                           else now + timedelta(seconds=rng.uniform(1, 600))) if is_active else None,
            }
        )  # fmt: skip
        event_rows.append(
            {
                "id": n + 1, "public_id": f"msg_{n:024x}", "account_id": principal.account_id,
                "job_id": job_id, "type": "video.completed", "payload": {"status": status},
                "created_at": created,
            }
        )  # fmt: skip
        pending = n % 200 == 0
        delivery_rows.append(
            {
                "id": f"whdel_{n:024x}", "event_id": n + 1, "event_public_id": f"msg_{n:024x}",
                "event_type": "video.completed", "account_id": principal.account_id, "mode": "test",
                "job_id": job_id, "destination": "job", "endpoint_id": None, "url": "https://example.com/h",
                "format": "standard", "body": "{}", "headers": {},
                "status": "pending" if pending else "succeeded", "attempts": 1,
                "window_started_at": created, "next_attempt_at": now if pending else None,
                "created_at": created, "updated_at": created,
            }
        )  # fmt: skip
    db = Database(url, null_pool=True)
    try:
        async with db.transaction() as conn:
            for start in range(0, jobs, 2000):
                await conn.execute(jobs_table.insert(), job_rows[start : start + 2000])
                await conn.execute(events.insert(), event_rows[start : start + 2000])
                await conn.execute(webhook_deliveries.insert(), delivery_rows[start : start + 2000])
            # the sender has fanned out all but the last 20 events
            await conn.execute(
                update(outbox_cursors)
                .where(outbox_cursors.c.name == "webhooks")
                .values(last_event_id=jobs - 20)
            )
        async with db.transaction() as conn:
            await conn.exec_driver_sql("ANALYZE")  # a store in use has statistics; a fresh seed not yet
    finally:
        await db.dispose()
    return str(key)


async def activate_all(url: str) -> None:
    from sqlalchemy import update

    from vidgate.store.engine import Database
    from vidgate.store.tables import jobs as jobs_table

    db = Database(url, null_pool=True)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                update(jobs_table)
                .where(jobs_table.c.run_at.is_(None))
                .values(status="running", run_at=now + timedelta(minutes=5), completed_at=None)
            )
        async with db.transaction() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await db.dispose()


def pg_backend_cpu(url: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``url``'s database (0 for SQLite)."""
    if not url.startswith("postgresql"):
        return 0.0
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)

    async def pids() -> list[int]:
        conn = await asyncpg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
        )
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                parsed.database,
            )
            return [int(r["pid"]) for r in rows]
        finally:
            await conn.close()

    total = 0.0
    for pid in asyncio.run(pids()):
        sample = proc_sample(pid)
        total += sample.cpu_s if sample else 0.0
    return total


def traffic(client: httpx.Client, key: str) -> None:
    """One GET of every documented route (placeholders filled), so the HTTP histograms hold
    as many series as a server in use: the exposition, and its cost, grow with them."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if "get" in operations:
            client.get(re.sub(r"\{[^}]+\}", "x", path), headers={"Authorization": f"Bearer {key}"})


def measure(url: str, folder: Path, key: str, *, scrapes: int, label: str) -> dict[str, Any]:
    port = free_port()
    env = bench_env(folder / f"data-{free_port()}", url)
    base = f"http://127.0.0.1:{port}"
    with process(vidgate_command("serve", "--no-worker", "--port", str(port)), env=env) as server:
        wait_http(f"{base}/healthz", timeout_s=90, child=server)
        latencies: list[float] = []
        with httpx.Client(base_url=base, timeout=30) as client:
            traffic(client, key)
            for _ in range(20):  # warm-up: imports, pools, prepared statements
                client.get("/metrics").raise_for_status()
            pg_before = pg_backend_cpu(url)
            first = proc_sample(server.pid)
            for _ in range(scrapes):
                started = time.perf_counter()
                answer = client.get("/metrics")
                latencies.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
            last = proc_sample(server.pid)
            pg_after = pg_backend_cpu(url)
            body = answer.text
    assert first is not None
    assert last is not None
    return {
        "case": label,
        "server_cpu_ms_per_scrape": (last.cpu_s - first.cpu_s) * 1000 / scrapes,
        "pg_cpu_ms_per_scrape": (pg_after - pg_before) * 1000 / scrapes,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "bytes": len(body),
        "active_series": body.count("vidgate_jobs_active{"),
        "http_series": body.count("vidgate_http_requests_total{"),
    }


def run(kind: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with temp_folder("vidgate-bench-metrics-") as folder:

        async def body() -> None:
            async with scratch_database(kind, folder) as url:
                key = await seed(url, jobs=args.jobs, active=args.active)
                label = f"{args.active:,} active"
                result = await asyncio.to_thread(measure, url, folder, key, scrapes=args.scrapes, label=label)
                rows.append({"db": kind, **result})
                await activate_all(url)
                label = f"all {args.jobs:,} active"
                result = await asyncio.to_thread(measure, url, folder, key, scrapes=args.scrapes, label=label)
                rows.append({"db": kind, **result})

        asyncio.run(body())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=500)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    info = machine()
    print_machine(info)
    rows: list[dict[str, Any]] = []
    for kind in parse_dbs(args.db):
        rows += run(kind, args)
    print_table(
        f"GET /metrics, {args.jobs:,} jobs in the store, {args.scrapes} scrapes in a row",
        ["db", "case", "server CPU ms/scrape", "pg CPU ms/scrape", "p50 ms", "p99 ms", "bytes", "routes"],
        [
            [
                r["db"], r["case"], round(r["server_cpu_ms_per_scrape"], 2),
                round(r["pg_cpu_ms_per_scrape"], 2), round(r["p50_ms"], 2), round(r["p99_ms"], 2), r["bytes"],
                r["http_series"],
            ]
            for r in rows
        ],
    )  # fmt: skip
    write_json(args.json, {"machine": info, "results": rows})


if __name__ == "__main__":
    main()
