"""Scenario ``api``: polls, submits and health checks beside the bare frameworks.

Per database: a ``vidgate serve --no-worker`` process (rate limit off, one uvicorn
process), a funded test-mode key and one job to poll. Measured with ``_loadgen``
(keep-alive connections, no httpx in the way):

- ``poll``: ``GET /v1/videos/{id}`` at 1 and 16 connections;
- ``submit``: ``POST /v1/videos`` (kling-3-pro, 5 s) at 1 and 16 connections;
- ``healthz``: ``GET /healthz`` at 1 connection.

Then, once, the same poll against ``bench/bare_apps.py`` (FastAPI and Starlette
returning the same JSON without auth or database). Figures: server CPU per request
(process CPU time from ``/proc``), req/s, p50 and p99.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from _common import (
    bench_env,
    free_port,
    make_key,
    proc_sample,
    process,
    scratch_database,
    vidgate_command,
    wait_http,
)
from _loadgen import LoadResult, hammer, request_bytes
from _scenario import Context, Table

NAME = "api"
BODY = {"model": "kling-3-pro", "prompt": "a paper boat on a river at dusk", "seconds": "5"}
HEADERS = [
    "target",
    "db",
    "path",
    "clients",
    "requests",
    "req/s",
    "p50 ms",
    "p99 ms",
    "CPU ms/req",
    "RSS MiB",
]


def row(target: str, db: str, path: str, result: LoadResult) -> list[Any]:
    return [
        target,
        db,
        path,
        result.concurrency,
        result.requests,
        result.rps,
        result.p(50),
        result.p(99),
        result.cpu_ms_per_request,
        result.server_rss_mib,
    ]


async def measure_vidgate(ctx: Context, kind: str, folder: Path, video_file: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with scratch_database(kind, folder) as url:
        key, _ = await make_key(url, "bench-funded", mode="test", credit_usd="10000000")
        port = free_port()
        host = f"127.0.0.1:{port}"
        env = ctx.server_env(bench_env(folder / "data", url, VIDGATE_RATE_LIMIT_PER_MINUTE="0"))
        serve = vidgate_command("serve", "--port", str(port), "--no-worker")
        with process(serve, env=env, log=folder / "serve.log") as server:
            wait_http(f"http://{host}/healthz", timeout_s=90, child=server)
            auth = {"Authorization": f"Bearer {key}"}
            create = request_bytes("POST", "/v1/videos", host=host, headers=auth, body=BODY)
            first = await hammer(
                "127.0.0.1", port, lambda _: create, concurrency=1, seconds=1, max_requests=1
            )
            video = json.loads(first.last_body)
            video_file.write_text(json.dumps(video))  # noqa: ASYNC240
            poll = request_bytes("GET", f"/v1/videos/{video['id']}", host=host, headers=auth)
            health = request_bytes("GET", "/healthz", host=host)
            cases = [
                ("poll", lambda _: poll, 1),
                ("poll", lambda _: poll, 16),
                ("submit", lambda _: create, 1),
                ("submit", lambda _: create, 16),
                ("healthz", lambda _: health, 1),
            ]
            # warm-up: imports, pools, caches
            for _, make, _ in cases[::2]:
                await hammer("127.0.0.1", port, make, concurrency=4, seconds=1)
            for path, make, clients in cases:
                with ctx.profiling(f"vidgate-{kind}-{path}-c{clients}", server.pid):
                    result = await hammer(
                        "127.0.0.1",
                        port,
                        make,
                        concurrency=clients,
                        seconds=ctx.seconds,
                        server_pid=server.pid,
                    )
                ctx.log(f"vidgate {kind} {path} c={clients}: {result.summary()}")
                found.append(
                    {
                        "target": "vidgate",
                        "db": kind,
                        "path": path,
                        **result.summary(),
                        "row": row("vidgate", kind, path, result),
                    }
                )
            peak = proc_sample(server.pid)
            ctx.log(f"vidgate {kind}: peak RSS {peak.peak_rss_mib if peak else float('nan'):.0f} MiB")
    return found


async def measure_bare(ctx: Context, kind: str, video_file: Path) -> list[dict[str, Any]]:
    port = free_port()
    host = f"127.0.0.1:{port}"
    video_id = json.loads(video_file.read_text())["id"]  # noqa: ASYNC240
    args = [
        sys.executable,
        str(Path(__file__).parent / "bare_apps.py"),
        kind,
        "--port",
        str(port),
        "--video",
        str(video_file),
    ]
    found: list[dict[str, Any]] = []
    with process(args, env=ctx.server_env(None)) as server:
        wait_http(f"http://{host}/healthz", timeout_s=60, child=server)
        poll = request_bytes(
            "GET", f"/v1/videos/{video_id}", host=host, headers={"Authorization": "Bearer x"}
        )
        await hammer("127.0.0.1", port, lambda _: poll, concurrency=4, seconds=1)
        for clients in (1, 16):
            result = await hammer(
                "127.0.0.1",
                port,
                lambda _: poll,
                concurrency=clients,
                seconds=ctx.seconds,
                server_pid=server.pid,
            )
            ctx.log(f"bare {kind} poll c={clients}: {result.summary()}")
            found.append(
                {
                    "target": f"bare {kind}",
                    "db": "-",
                    "path": "poll",
                    **result.summary(),
                    "row": row(f"bare {kind}", "-", "poll", result),
                }
            )
    return found


async def run(ctx: Context) -> list[Table]:
    results: list[dict[str, Any]] = []
    video_file = ctx.folder / "video.json"
    for kind in ctx.dbs:
        sub = ctx.folder / f"api-{kind}"
        sub.mkdir()
        results += await measure_vidgate(ctx, kind, sub, video_file)
    for kind in ("fastapi", "starlette"):
        results += await measure_bare(ctx, kind, video_file)
    ctx.record(NAME, [{k: v for k, v in r.items() if k != "row"} for r in results])
    return [
        Table(
            "Polls, submits and health checks beside the bare frameworks (server CPU per request)",
            HEADERS,
            [r["row"] for r in results],
        )
    ]


if __name__ == "__main__":
    from _scenario import main

    asyncio.run(main([sys.modules[__name__]]))
