"""Ten thousand clients waiting on one API process: CPU while they wait, wake latency after.

    python bench/waiters.py [--waiters 10000] [--changes 2000] [--rate 100]
                            [--quiet 20] [--db sqlite,postgres] [--mode sse|wait]

Per database, ``--waiters`` live jobs (status ``running``, held by a lease of the
benchmark, so no worker touches them) are written straight into a scratch store. ONE
server process (the real app, ``create_app``, under uvicorn; no worker loop) is
started, and the benchmark opens one real TCP connection per job (raw asyncio
streams, so that the client's own cost stays small) to

- ``--mode sse`` (default): ``GET /v1/videos/{id}/events``, reading the first event
  (the current state) and then waiting for the next one; or
- ``--mode wait``: ``GET /v1/videos/{id}`` with ``If-None-Match: <its ETag>`` and
  ``Prefer: wait=60``, the long poll (limited to what can be opened within 60 s).

Once every waiter is connected and waiting, the server's CPU time is read over
``--quiet`` seconds of nothing happening: that is what 10,000 waiting clients cost.
Then ``--changes`` of the jobs change (``JobLifecycle.progress``: one transaction,
an event, announce, publish) at ``--rate`` per second, and for each the wake latency is
measured from the change's commit (the moment ``progress`` returned, in the changing
process) to the moment the client has the event (or the 200) in hand.

Who changes the jobs: on SQLite the server process itself (changes are published in
process; a command on its stdin starts them), on PostgreSQL a separate process (a
child with its own ``JobLifecycle``), so the wake-up crosses processes through
``NOTIFY``/``LISTEN``. Both clocks are this machine's ``time.time()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import (
    free_port,
    load_avg,
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
    wait_http,
    write_json,
)
from _scenario import Table

OWNER = "bench-waiters"
MODEL = "sora-2"
OPEN_AT_ONCE = 64  # connections being opened (request sent, first answer awaited) at once


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# ====================================================================== changing jobs


async def change_jobs(lifecycle: Any, jobs: Sequence[Any], rate: float, out: dict[str, float]) -> None:
    """Change each job's progress at ``rate`` per second; ``out[job id]`` = commit time."""
    start = time.monotonic()
    gate = asyncio.Semaphore(16)

    async def one(index: int, job: Any) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        async with gate:
            await lifecycle.progress(job, OWNER, progress=50, raw_status="bench", eta_s=None)
            out[job.id] = time.time()

    await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs)))


async def load_jobs(db: Any, ids: Sequence[str]) -> list[Any]:
    from sqlalchemy import select

    from vidgate.store.jobs import job_from_row
    from vidgate.store.tables import jobs

    found: dict[str, Any] = {}
    async with db.read() as conn:
        for start in range(0, len(ids), 500):
            rows = await conn.execute(select(jobs).where(jobs.c.id.in_(ids[start : start + 500])))
            for row in rows:
                job = job_from_row(row)
                found[job.id] = job
    return [found[i] for i in ids]


async def changer_child() -> None:
    """A separate process that changes the jobs (PostgreSQL): its own ``JobLifecycle``."""
    from vidgate.catalog.loader import load_catalog
    from vidgate.service.lifecycle import JobLifecycle
    from vidgate.store.changes import JobChanges
    from vidgate.store.engine import Database

    order = json.loads(await asyncio.to_thread(sys.stdin.readline))
    db = Database(order["url"])
    try:
        lifecycle = JobLifecycle(db, load_catalog(None), changes=JobChanges(cross_process=True))
        jobs = await load_jobs(db, order["ids"])
        out: dict[str, float] = {}
        await change_jobs(lifecycle, jobs, order["rate"], out)
        print(json.dumps({"committed": out}), flush=True)
    finally:
        await db.dispose()


# ====================================================================== the server child


async def server_child(config: dict[str, Any]) -> None:
    """The measured process: the app under uvicorn; on SQLite it also changes the jobs."""
    import logging

    import uvicorn

    from vidgate.config import Settings
    from vidgate.runtime.app import create_app

    logging.basicConfig(level=logging.WARNING)
    raise_fd_limit(config["waiters"] + 1000)
    settings = Settings(
        data_dir=Path(config["data_dir"]),
        database_url=config["database_url"],
        secret_key="bench-secret",
        log_level="warning",
        rate_limit_per_minute=0,
    )
    app = create_app(settings, run_worker=False, env={})
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=config["port"],
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_keep_alive=120,
            limit_concurrency=None,
        )
    )
    serving = asyncio.create_task(server.serve())

    async def commands() -> None:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            order = json.loads(line)
            if order["do"] == "change":
                svc = app.state.services
                jobs = await load_jobs(svc.db, order["ids"])
                out: dict[str, float] = {}
                await change_jobs(svc.lifecycle, jobs, order["rate"], out)
                print(json.dumps({"committed": out}), flush=True)
            elif order["do"] == "stop":
                server.should_exit = True
                return
            elif order["do"] == "waiting":
                print(json.dumps({"waiting": app.state.services.lifecycle.changes.waiting}), flush=True)

    reader = asyncio.create_task(commands())
    await serving
    reader.cancel()
    print("server stopped", file=sys.stderr, flush=True)


# ====================================================================== seeding


async def seed(url: str, n: int) -> tuple[str, list[str], dict[str, str]]:
    """``n`` running jobs under one key, leased to the benchmark; (key, ids, id -> ETag token)."""
    from vidgate.clock import utcnow
    from vidgate.domain.request import GenerationRequest
    from vidgate.ids import new_job_id
    from vidgate.service.waiting import job_version
    from vidgate.store.engine import Database
    from vidgate.store.tables import jobs

    secret, principal = await make_key(url, "waiters", credit_usd="0")
    now = utcnow()
    far = now + timedelta(days=1)
    request = GenerationRequest(model=MODEL, prompt="waiting", duration_s=4).model_dump(mode="json")
    rows = [
        {
            "id": new_job_id(),
            "account_id": principal.account_id,
            "key_id": principal.key_id,
            "mode": principal.mode,
            "dialect": "native",
            "model": MODEL,
            "status": "running",
            "progress": 10,
            "request": request,
            "metadata": {},
            "estimated_micros": 0,
            "held_micros": 0,
            "created_at": now,
            "updated_at": now,
            "deadline_at": far,
            "run_at": far,
            "lease_owner": OWNER,
            "lease_expires_at": far,
            "provider": "simulator",
        }
        for _ in range(n)
    ]
    db = Database(url)
    try:
        for start in range(0, n, 1000):
            async with db.transaction() as conn:
                await conn.execute(jobs.insert(), rows[start : start + 1000])
        ids = [r["id"] for r in rows]
        versions = {job.id: job_version(job) for job in await load_jobs(db, ids)}
    finally:
        await db.dispose()
    return secret, ids, versions


# ====================================================================== the clients


@dataclass
class Waiter:
    job_id: str
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    woke_at: float | None = None
    error: str | None = None


@dataclass
class Clients:
    waiters: list[Waiter] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _read_block(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\n\n")


async def open_sse(port: int, key: str, waiter: Waiter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    waiter.reader, waiter.writer = reader, writer
    writer.write(
        f"GET /v1/videos/{waiter.job_id}/events HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace").splitlines()[0])
    # chunked transfer: read until the first video.status event has arrived
    buffer = b""
    while b"event: video.status" not in buffer:
        buffer += await reader.read(65536)


async def follow_sse(waiter: Waiter) -> None:
    assert waiter.reader is not None
    buffer = b""
    while b"event: video.status" not in buffer:
        chunk = await waiter.reader.read(65536)
        if not chunk:
            raise ConnectionError("the stream ended")
        buffer += chunk
    waiter.woke_at = time.time()


async def open_wait(port: int, key: str, waiter: Waiter, version: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    waiter.reader, waiter.writer = reader, writer
    writer.write(
        f"GET /v1/videos/{waiter.job_id} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f'If-None-Match: W/"{version}"\r\nPrefer: wait=60\r\n\r\n'.encode()
    )


async def follow_wait(waiter: Waiter) -> None:
    assert waiter.reader is not None
    head = await waiter.reader.readuntil(b"\r\n\r\n")
    waiter.woke_at = time.time()
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace").splitlines()[0])


async def connect_all(
    port: int, key: str, ids: Sequence[str], versions: dict[str, str], mode: str
) -> tuple[Clients, float]:
    clients = Clients()
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    start = time.monotonic()

    async def one(job_id: str) -> None:
        waiter = Waiter(job_id)
        clients.waiters.append(waiter)
        try:
            async with gate:
                if mode == "sse":
                    await open_sse(port, key, waiter)
                else:
                    await open_wait(port, key, waiter, versions[job_id])
        except Exception as exc:
            waiter.error = f"open: {exc!r}"
            return

        async def follow() -> None:
            try:
                await (follow_sse(waiter) if mode == "sse" else follow_wait(waiter))
            except Exception as exc:
                waiter.error = f"follow: {exc!r}"

        clients.tasks.append(asyncio.create_task(follow()))

    await asyncio.gather(*(one(i) for i in ids))
    return clients, time.monotonic() - start


def close_all(clients: Clients) -> None:
    for task in clients.tasks:
        task.cancel()
    for waiter in clients.waiters:
        if waiter.writer is not None:
            waiter.writer.close()


# ====================================================================== one run


class ChildLines:
    """The server child's JSON answers, read on a thread."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.lines: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, args=(child,), daemon=True)
        self._thread.start()

    def _read(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(raw))

    async def next(self, key: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines):
                if key in line:
                    del self.lines[index]
                    return line[key]
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the server did not answer {key!r} in {timeout_s} s")


async def until(check: Any, timeout_s: float) -> bool:
    """Whether ``check()`` became true within ``timeout_s`` (looked at every 0.1 s)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def tell(child: subprocess.Popen[bytes], order: dict[str, Any]) -> None:
    assert child.stdin is not None
    child.stdin.write((json.dumps(order) + "\n").encode())
    child.stdin.flush()


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind}: {args.waiters} waiters ({args.mode}), {args.changes} changes at {args.rate:g}/s")
    with temp_folder("vg-bench-waiters-", keep=args.keep) as folder:
        return asyncio.run(_run_one(kind, folder, args))


async def _run_one(kind: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    async with scratch_database(kind, folder) as url:
        key, ids, versions = await seed(url, args.waiters)
        print(f"   seeded {len(ids)} running jobs", flush=True)
        port = free_port()
        config = {
            "data_dir": str(folder / "data"),
            "database_url": url,
            "port": port,
            "waiters": args.waiters,
        }
        with process(
            [sys.executable, __file__, "--server-child", json.dumps(config)],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            log=folder / "server.log",
        ) as child:
            lines = ChildLines(child)
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=90, child=child)
            before_open = proc_sample(child.pid)
            clients, open_s = await connect_all(port, key, ids, versions, args.mode)
            opened = [w for w in clients.waiters if w.error is None]
            print(f"   {len(opened)} waiters connected in {open_s:.1f} s", flush=True)
            opening = proc_sample(child.pid)
            if opening and before_open:
                print(f"   server CPU while opening: {opening.cpu_s - before_open.cpu_s:.2f} s", flush=True)
            tell(child, {"do": "waiting"})
            waiting_server = await lines.next("waiting", 30)
            after_open = proc_sample(child.pid)
            # the quiet window: everyone waits, nothing changes
            quiet_start = proc_sample(child.pid)
            await asyncio.sleep(args.quiet)
            quiet_end = proc_sample(child.pid)
            assert before_open is not None
            assert after_open is not None
            assert quiet_start is not None
            assert quiet_end is not None
            quiet_cpu_s = quiet_end.cpu_s - quiet_start.cpu_s
            quiet_wall = quiet_end.at - quiet_start.at
            print(
                f"   quiet {quiet_wall:.1f} s: server CPU {quiet_cpu_s:.2f} s "
                f"({100 * quiet_cpu_s / quiet_wall:.1f}%), {waiting_server} waiting",
                flush=True,
            )
            # the changes
            changed_ids = ids[: args.changes]
            change_start = proc_sample(child.pid)
            committed: dict[str, float]
            if kind == "sqlite":
                tell(child, {"do": "change", "ids": changed_ids, "rate": args.rate})
                committed = await lines.next("committed", 60 + args.changes / args.rate * 3)
            else:
                # another process (not this one, whose loop reads the 10,000 sockets)
                order = {"url": url, "ids": changed_ids, "rate": args.rate}
                with process(
                    [sys.executable, __file__, "--changer-child"],
                    stdout=subprocess.PIPE,
                    stdin=subprocess.PIPE,
                    log=folder / "changer.log",
                ) as changer:
                    changer_lines = ChildLines(changer)
                    tell(changer, order)
                    committed = await changer_lines.next("committed", 60 + args.changes / args.rate * 3)
            by_id = {w.job_id: w for w in clients.waiters}
            await until(lambda: all(by_id[j].woke_at is not None or by_id[j].error for j in changed_ids), 30)
            change_end = proc_sample(child.pid)
            assert change_start is not None
            assert change_end is not None
            lat = [
                1000 * (by_id[j].woke_at - committed[j])  # type: ignore[operator]
                for j in changed_ids
                if j in committed and by_id[j].woke_at is not None
            ]
            spurious = sum(1 for w in clients.waiters if w.woke_at is not None and w.job_id not in committed)
            errors = [w.error for w in clients.waiters if w.error]
            close_all(clients)
            peak = proc_sample(child.pid)
            tell(child, {"do": "stop"})
            # (async: the loop must run for the client sockets to close)
            await until(lambda: child.poll() is not None, 30)
    return {
        "db": kind,
        "mode": args.mode,
        "waiters": args.waiters,
        "connected": len(opened),
        "waiting_server": waiting_server,
        "open_s": open_s,
        "open_cpu_s": after_open.cpu_s - before_open.cpu_s,
        "quiet_s": quiet_wall,
        "quiet_cpu_s": quiet_cpu_s,
        "quiet_cpu_pct": 100 * quiet_cpu_s / quiet_wall,
        "changes": len(committed),
        "rate": args.rate,
        "woken": len(lat),
        "spurious": spurious,
        "lat_p50_ms": percentile(lat, 50),
        "lat_p99_ms": percentile(lat, 99),
        "lat_max_ms": max(lat) if lat else float("nan"),
        "change_cpu_pct": 100 * (change_end.cpu_s - change_start.cpu_s) / (change_end.at - change_start.at),
        "rss_mib": peak.peak_rss_mib if peak else float("nan"),
        "errors": errors[:5],
        "error_count": len(errors),
        "load_avg_after": load_avg(),
    }


def parser() -> argparse.ArgumentParser:
    """The options and their defaults (also read by ``scenario_waiting``, for ``run.py``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=2000, help="how many of the jobs change")
    parser.add_argument("--rate", type=float, default=100.0, help="changes per second")
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds of waiting measured")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--mode", choices=("sse", "wait"), default="sse")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    parser.add_argument("--server-child", help=argparse.SUPPRESS)
    parser.add_argument("--changer-child", action="store_true", help=argparse.SUPPRESS)
    return parser


def tables(args: argparse.Namespace, results: list[dict[str, Any]]) -> list[Table]:
    """The results as tables (printed by ``main`` here and by ``bench/run.py``)."""
    return [
        Table(
            f"{args.waiters} waiters ({args.mode}) on one API process",
            [
                "db",
                "connected",
                "open s",
                "quiet s",
                "server CPU s while waiting",
                "CPU %",
                "changes",
                "woken",
                "wake p50 ms",
                "p99 ms",
                "max ms",
                "CPU % while changing",
                "RSS MiB",
                "errors",
            ],
            [
                [
                    r["db"],
                    r["connected"],
                    r["open_s"],
                    r["quiet_s"],
                    r["quiet_cpu_s"],
                    r["quiet_cpu_pct"],
                    r["changes"],
                    r["woken"],
                    r["lat_p50_ms"],
                    r["lat_p99_ms"],
                    r["lat_max_ms"],
                    r["change_cpu_pct"],
                    r["rss_mib"],
                    r["error_count"],
                ]
                for r in results
            ],
        )
    ]


def main() -> None:
    args = parser().parse_args()
    if args.changer_child:
        asyncio.run(changer_child())
        return
    if args.server_child:
        profile = os.environ.get("BENCH_PROFILE")  # a file name: cProfile the server into it
        if profile:
            import cProfile

            with cProfile.Profile() as prof:
                asyncio.run(server_child(json.loads(args.server_child)))
            prof.dump_stats(profile)
        else:
            asyncio.run(server_child(json.loads(args.server_child)))
        return
    raise_fd_limit(args.waiters + 1000)
    info = machine()
    print_machine(info)
    results = [run_one(kind, args) for kind in parse_dbs(args.db)]
    for table in tables(args, results):
        print_table(table.title, table.headers, table.rows)
    for r in results:
        if r["errors"]:
            print(f"   {r['db']} errors (first 5): {r['errors']}")
    write_json(args.json, {"machine": info, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
