"""Scenario ``worker``: does the worker's re-hosting slow the polls of the same server?

A fake OpenAI-videos upstream finishes each job ``LATENCY_S`` after it is submitted.
A pacer submits ``RATE`` jobs per second (funded live key, model ``sora-2``) while one
client polls a job back to back. Two servers, one after the other, same SQLite:

- ``vidgate serve --no-worker``: the API alone (the baseline; jobs only queue);
- ``vidgate serve``: the all-in-one default, whose worker submits every job to the
  fake, polls it, downloads the finished MP4, probes it, thumbnails it and stores it,
  in the API's process;
- ``VIDGATE_SERVE_WORKER=process vidgate serve``: the same with the worker in a child.

Figures: poll p50/p99 at one client, how many jobs the worker finished meanwhile,
and the RSS of the server's whole process tree at the end (API and any worker child).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from _loadgen import hammer, request_bytes
from _scenario import Context, Table

NAME = "worker"
UPSTREAM_KEY = "test-key"
LATENCY_S = 1.0
RATE = 4.0  # submits per second while polling
BODY = {"model": "sora-2", "prompt": "a paper boat on a river at dusk", "seconds": "4"}
HEADERS = [
    "server",
    "poll clients",
    "polls",
    "p50 ms",
    "p99 ms",
    "CPU ms/poll*",
    "submits",
    "re-hosted",
    "tree RSS MiB",
]


def tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and its descendants."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        sample = proc_sample(current)
        total += sample.rss_mib if sample else 0.0
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
    return total


async def pace(port: int, make: bytes, stop: asyncio.Event, sent: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            writer.write(make)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                    if k.lower() == b"content-length"
                ),
                0,
            )
            await reader.readexactly(length)
            sent[0] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / RATE)
    finally:
        writer.close()


async def completed(db_url: str) -> int:
    from sqlalchemy import text

    from vidgate.store.engine import Database

    db = Database(db_url, null_pool=True)
    try:
        async with db.read() as conn:
            return int(
                (
                    await conn.execute(text("SELECT count(*) FROM jobs WHERE status = 'succeeded'"))
                ).scalar_one()
            )
    finally:
        await db.dispose()


async def one(
    ctx: Context, label: str, with_worker: bool, upstream: str, folder: Path, mode: str = "inline"
) -> list[Any]:
    async with scratch_database("sqlite", folder) as url:
        key, _ = await make_key(url, "bench-live", mode="live", credit_usd="100000000")
        port = free_port()
        host = f"127.0.0.1:{port}"
        env = bench_env(
            folder / "data",
            url,
            VIDGATE_RATE_LIMIT_PER_MINUTE="0",
            VIDGATE_OPENAI_API_KEY=UPSTREAM_KEY,
            VIDGATE_OPENAI_BASE_URL=upstream,
            VIDGATE_SERVE_WORKER=mode,
        )
        serve = vidgate_command("serve", "--port", str(port), *([] if with_worker else ["--no-worker"]))
        with process(serve, env=ctx.server_env(env), log=folder / "serve.log") as server:
            wait_http(f"http://{host}/healthz", timeout_s=180, child=server)
            auth = {"Authorization": f"Bearer {key}"}
            create = request_bytes("POST", "/v1/videos", host=host, headers=auth, body=BODY)
            first = await hammer(
                "127.0.0.1", port, lambda _: create, concurrency=1, seconds=30, max_requests=1
            )
            video_id = json.loads(first.last_body)["id"]
            poll = request_bytes("GET", f"/v1/videos/{video_id}", host=host, headers=auth)
            stop, sent = asyncio.Event(), [0]
            pacer = asyncio.create_task(pace(port, create, stop, sent))
            await asyncio.sleep(LATENCY_S + 2)  # the worker is in its steady state: fetching
            if mode == "process":  # a child worker starts after the API listens: wait for its first job
                deadline = asyncio.get_running_loop().time() + 120
                while await completed(url) == 0 and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
            result = await hammer(
                "127.0.0.1",
                port,
                lambda _: poll,
                concurrency=1,
                seconds=ctx.seconds * 2,
                server_pid=server.pid,
            )
            rss = tree_rss_mib(server.pid)
            stop.set()
            await pacer
            done = await completed(url)
            ctx.log(f"{label}: {result.summary()} submits {sent[0]} re-hosted {done} tree RSS {rss:.0f} MiB")
            ctx.raw.setdefault(NAME, []).append(
                {
                    "server": label,
                    **result.summary(),
                    "submits": sent[0],
                    "rehosted": done,
                    "tree_rss_mib": rss,
                }
            )
            cpu = result.server_cpu_s * 1000 / result.requests if result.requests else float("nan")
            return [label, 1, result.requests, result.p(50), result.p(99), cpu, sent[0], done, rss]


async def run(ctx: Context) -> list[Table]:
    fake_port = free_port()
    upstream = f"http://127.0.0.1:{fake_port}"
    fake_cmd = vidgate_command(
        "fake-upstream", "openai", "--port", str(fake_port), "--latency", str(LATENCY_S)
    )
    fake_cmd += ["--api-key", UPSTREAM_KEY]
    rows = []
    with process(fake_cmd, env=ctx.server_env(None), log=ctx.folder / "fake.log") as fake:
        wait_http(f"{upstream}/v1/videos/none", timeout_s=180, child=fake)
        servers = [
            ("serve --no-worker", False, "inline"),
            ("serve (worker in process)", True, "inline"),
            ("serve (worker as child)", True, "process"),
        ]
        for label, with_worker, mode in servers:
            sub = ctx.folder / f"{mode}-{with_worker}"
            sub.mkdir()
            rows.append(await one(ctx, label, with_worker, upstream, sub, mode))
    return [
        Table(
            f"Poll latency at one client while {RATE:g} jobs/s are submitted (and, with the worker,"
            f" re-hosted {LATENCY_S:g} s later). *CPU of the serving process (with the worker in it: both)",
            HEADERS,
            rows,
        )
    ]


if __name__ == "__main__":
    import _scenario

    asyncio.run(_scenario.main([sys.modules[__name__]], [*sys.argv[1:], "--only", NAME]))
