"""Create throughput and latency through the real HTTP server.

    python bench/submit.py [--db sqlite,postgres] [--concurrency 1,16,64] [--seconds 8]
                           [--requests 4000] [--with-worker]

For each database a ``vidgate serve --no-worker`` process is started on a free
loopback port (SQLite file or a scratch PostgreSQL database, rate limit off). N
concurrent clients (one ``httpx.AsyncClient``, keep-alive, N connections) then send
``POST /v1/videos`` with a test-mode key for ``--seconds`` (or ``--requests``,
whichever ends first). Every create authenticates the key, validates and prices the
request, and in ONE transaction inserts the job, places the hold and writes the
outbox event. The ``402`` rows do the same with a key whose balance is zero: the
hold is refused and the transaction rolled back.

The API runs without its worker by default, so that simulator renders do not compete
for the CPU with the API being measured (``--with-worker`` runs both, as
``vidgate serve`` does by default). The load generator shares the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    bench_env,
    cpu_percent,
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

BODY = {"model": "kling-3-pro", "prompt": "a paper boat on a river at dusk", "seconds": "5"}


async def load(
    base: str,
    key: str,
    *,
    concurrency: int,
    seconds: float,
    requests: int,
    expect: int,
    server_pid: int,
    baseline: bool = False,
) -> dict[str, Any]:
    """``concurrency`` clients posting creates back to back until time or count runs out.

    ``baseline`` sends ``GET /healthz`` instead (the HTTP stack and one ``SELECT 1``).
    """
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}  # HTTP status, or the client error's name
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sent = 0
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        start = time.perf_counter()
        stop_at = start + seconds
        server_before, client_before = proc_sample(server_pid), proc_sample()

        async def one_client() -> None:
            nonlocal sent
            while sent < requests and time.perf_counter() < stop_at:
                sent += 1
                began = time.perf_counter()
                code: int | str
                try:
                    if baseline:
                        response = await client.get("/healthz")
                    else:
                        response = await client.post("/v1/videos", json=BODY, headers=headers)
                    code = response.status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                latencies.append(time.perf_counter() - began)
                statuses[code] = statuses.get(code, 0) + 1

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        server_after, client_after = proc_sample(server_pid), proc_sample()
    ms = [x * 1000 for x in latencies]
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "expected_status": expect,
        "ok": statuses.get(expect, 0),
        "other": {k: v for k, v in statuses.items() if k != expect},
        "seconds": wall,
        "rps": len(latencies) / wall if wall else 0.0,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms, default=float("nan")),
        "server_cpu_pct": cpu_percent(server_before, server_after)
        if server_before and server_after
        else float("nan"),
        "server_rss_mib": server_after.rss_mib if server_after else float("nan"),
        "client_cpu_pct": cpu_percent(client_before, client_after)
        if client_before and client_after
        else float("nan"),
    }


async def run_db(kind: str, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    async with scratch_database(kind, folder) as url:
        funded, _ = await make_key(url, "bench-funded", mode="test", credit_usd="10000000")
        broke, _ = await make_key(url, "bench-broke", mode="test", credit_usd="0")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = ["serve", "--port", str(port)] + ([] if args.with_worker else ["--no-worker"])
        env = bench_env(folder / "data", url, VIDGATE_RATE_LIMIT_PER_MINUTE="0")
        with process(vidgate_command(*serve), env=env, log=folder / "serve.log") as server:
            started = wait_http(f"{base}/healthz", timeout_s=90, child=server)
            print(f"   {kind}: server up in {started:.1f} s (pid {server.pid})", flush=True)
            # warm up: imports, pools, caches
            await load(
                base, funded, concurrency=4, seconds=3, requests=100, expect=200, server_pid=server.pid
            )
            baseline = await load(
                base,
                funded,
                concurrency=16,
                seconds=min(4.0, args.seconds),
                requests=args.requests,
                expect=200,
                server_pid=server.pid,
                baseline=True,
            )
            baseline.update(db=kind, path="GET /healthz")
            results.append(baseline)
            for path, key, expect in (("create", funded, 200), ("402", broke, 402)):
                for concurrency in args.concurrency:
                    result = await load(
                        base,
                        key,
                        concurrency=concurrency,
                        seconds=args.seconds,
                        requests=args.requests,
                        expect=expect,
                        server_pid=server.pid,
                    )
                    result.update(db=kind, path=path)
                    print(
                        f"   {kind} {path} c={concurrency}: {result['rps']:.0f} req/s, "
                        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms",
                        flush=True,
                    )
                    results.append(result)
            peak = proc_sample(server.pid)
            for result in results:
                result["server_peak_rss_mib"] = peak.peak_rss_mib if peak else float("nan")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (default both)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measurement")
    parser.add_argument("--requests", type=int, default=4000, help="at most this many requests each")
    parser.add_argument("--with-worker", action="store_true", help="run the worker in the API process")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    info = machine()
    print_machine(info)
    results: list[dict[str, Any]] = []
    for kind in parse_dbs(args.db):
        with temp_folder("vg-bench-submit-") as folder:
            results += asyncio.run(run_db(kind, folder, args))
    print_table(
        "POST /v1/videos through `vidgate serve`"
        + (" (with its worker)" if args.with_worker else " --no-worker")
        + "; create = 200 with a hold, 402 = balance too low",
        [
            "db",
            "path",
            "clients",
            "requests",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "unexpected",
            "server CPU %",
            "client CPU %",
            "server RSS MiB",
        ],
        [
            [
                r["db"],
                r["path"],
                r["concurrency"],
                r["requests"],
                r["rps"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                r["max_ms"],
                sum(r["other"].values()) or 0,
                r["server_cpu_pct"],
                r["client_cpu_pct"],
                r["server_rss_mib"],
            ]
            for r in results
        ],
    )
    for r in results:
        if r["other"]:
            print(f"unexpected answers, {r['db']} {r['path']} x{r['concurrency']}: {r['other']}")
    write_json(args.json, {"machine": info, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
