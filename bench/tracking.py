"""One worker process tracking thousands of live jobs at once.

    python bench/tracking.py [--jobs 2000] [--latency 45] [--db sqlite,postgres]
                             [--concurrency 64] [--poll-interval 0.5] [--upstream fal|stub]

For each database: a fake fal queue runs in its own process (``vidgate fake-upstream
fal``) that reports each job done ``--latency`` seconds after it was submitted.
``--jobs`` live jobs are created through ``JobService.submit`` (hold placed, event
written), submitted to the fake with the real ``FalAdapter`` and left in ``running``
with their first poll spread over 10 s, as a worker would have left them. Then ONE
worker process (the real ``Worker`` that ``build_runtime`` makes, as ``vidgate
worker`` does; wrapped with timers, not modified), idle until the seeding is done,
tracks them all until they settle: poll, fetch the MP4 from the fake, probe it,
thumbnail it, store it, capture the hold.

Reported, for the steady state (from 5 s after the worker starts until the first job
is done upstream): polls per second and so how often each job is looked at; the lease
transaction (``Worker.tick``) time; transactions per second and their mean time; the
worker's CPU, RSS and asyncio task count (no task per job: it stays at
``--concurrency`` plus three). Then, once the fake reports each job done: how long
until every job has settled, and the per-job lag from "done upstream" to
"succeeded in vidgate".

``--callbacks`` turns on upstream callbacks, as ``VIDGATE_PUBLIC_URL`` does: the worker
process also serves HTTP (the real app, ``/callbacks/fal`` and the native API; still one
process), every job is submitted with ``fal_webhook`` pointing there, and the fake
posts its signed webhook when a job is done, which makes the job due at once. Then
``--watchers`` of the jobs are followed by real clients on ``GET /v1/videos/{id}/events``
and the lag "done upstream -> the client has the succeeded event" is reported next to
"done upstream -> succeeded in the store" of every job. ``--seed-rate`` caps how fast
jobs are created, and so how fast they finish upstream (they finish ``--latency`` after
their creation): the rate of completions a worker must settle.

``--concurrency`` defaults to 64 here (the product default, 16, takes a minute longer
to settle; see docs/benchmarks.md). ``--upstream stub`` replaces the HTTP fake by an
in-process adapter (no HTTP, no fake process), to see the worker's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import (
    ProcSample,
    cpu_percent,
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
    vidgate_command,
    wait_http,
    write_json,
)
from _scenario import Table

MODEL = "kling-3-pro"
FAL_KEY = "fal-key"
FIRST_POLL_SPREAD_S = 10.0  # seeded jobs' first polls are spread over this long
WARM_UP_S = 5.0  # the steady-state window starts this long after the worker is let go


# ====================================================================== the worker


class StubAdapter:
    """An upstream that lives in the job's own state: running until ``t0 + latency``.

    Like the simulator it keeps no state, so the seeding process and the worker agree.
    """

    name = "fal"

    def __init__(self) -> None:
        from vidgate.providers.base import Capability
        from vidgate.testing.fake import sample_mp4

        self.capabilities = frozenset({Capability.CANCEL})
        self._video = sample_mp4(1)

    async def submit(self, req: Any, route: Any, attempt: Any) -> Any:
        from vidgate.providers.base import UpstreamRef

        return UpstreamRef(id=f"stub-{uuid.uuid4().hex}", state={"t0": time.time()})

    async def poll(self, ref: Any) -> Any:
        from vidgate.providers.base import UpstreamOutput, UpstreamStatus

        latency = float(os.environ.get("BENCH_STUB_LATENCY_S", "60"))
        if time.time() < float(ref.state["t0"]) + latency:
            return UpstreamStatus("running", raw_status="IN_PROGRESS")
        output = UpstreamOutput(url=f"stub://{ref.id}.mp4", content_type="video/mp4")
        return UpstreamStatus("succeeded", progress=100, outputs=(output,), raw_status="COMPLETED")

    async def cancel(self, ref: Any) -> None:
        return None

    def parse_callback(self, call: Any) -> None:
        return None

    async def stream_output(self, output: Any) -> AsyncIterator[bytes]:
        for start in range(0, len(self._video), 256 * 1024):
            yield self._video[start : start + 256 * 1024]


@dataclass
class Counters:
    ticks: int = 0
    tick_s: list[float] = field(default_factory=list)  # durations since the last report
    leased: int = 0
    steps: int = 0
    polls: int = 0
    poll_s: float = 0.0
    fetches: int = 0
    fetch_s: float = 0.0
    tx: int = 0
    tx_s: float = 0.0
    reads: int = 0
    read_s: float = 0.0
    tasks_max: int = 0  # asyncio tasks alive right after a tick started its steps


def _instrument(runtime: Any, counters: Counters) -> None:
    svc = runtime.services
    """Wrap (never change) the worker's seams with timers and counters."""
    import vidgate.worker.loop as loop_module

    db = svc.db
    plain_tx, plain_read = db.transaction, db.read

    @contextlib.asynccontextmanager
    async def transaction(**kwargs: Any) -> AsyncIterator[Any]:
        start = time.perf_counter()
        try:
            async with plain_tx(**kwargs) as conn:
                yield conn
        finally:
            counters.tx += 1
            counters.tx_s += time.perf_counter() - start

    @contextlib.asynccontextmanager
    async def read(**kwargs: Any) -> AsyncIterator[Any]:  # e.g. point=True (the key cache)
        start = time.perf_counter()
        try:
            async with plain_read(**kwargs) as conn:
                yield conn
        finally:
            counters.reads += 1
            counters.read_s += time.perf_counter() - start

    db.transaction, db.read = transaction, read
    worker = runtime.worker
    plain_tick, plain_step = worker.tick, worker._step

    async def tick() -> int:
        start = time.perf_counter()
        started = await plain_tick()
        counters.ticks += 1
        counters.tick_s.append(time.perf_counter() - start)
        counters.leased += started
        counters.tasks_max = max(counters.tasks_max, len(asyncio.all_tasks()))
        return started

    async def step(job: Any) -> None:
        counters.steps += 1
        await plain_step(job)

    worker.tick, worker._step = tick, step
    adapter = svc.pool.adapter("fal")
    plain_poll = adapter.poll

    async def poll(ref: Any) -> Any:
        start = time.perf_counter()
        try:
            return await plain_poll(ref)
        finally:
            counters.polls += 1
            counters.poll_s += time.perf_counter() - start

    adapter.poll = poll
    plain_rehost = loop_module.rehost

    async def rehost(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await plain_rehost(*args, **kwargs)
        finally:
            counters.fetches += 1
            counters.fetch_s += time.perf_counter() - start

    loop_module.rehost = rehost


async def worker_child(config: dict[str, Any]) -> None:
    """The measured process: the real Worker, reporting its counters once a second."""
    import logging

    from vidgate.config import Settings
    from vidgate.runtime.services import build_runtime

    logging.basicConfig(level=logging.WARNING)
    callbacks = bool(config.get("callbacks"))
    settings = Settings(
        data_dir=Path(config["data_dir"]),
        database_url=config["database_url"],
        public_url=f"http://127.0.0.1:{config['port']}" if callbacks else None,
        rate_limit_per_minute=0,
        worker_concurrency=config["concurrency"],
        worker_poll_interval_s=config["poll_interval"],
        job_timeout_s=3600,
        secret_key="bench-secret",
        log_level="warning",
    )
    env = {"VIDGATE_FAL_API_KEY": FAL_KEY, "VIDGATE_FAL_BASE_URL": config["fal_url"]}
    runtime = await build_runtime(settings, env=env)
    svc = runtime.services
    if config["upstream"] == "stub":
        svc.pool.install("fal", StubAdapter())  # type: ignore[arg-type]
    counters = Counters()
    _instrument(runtime, counters)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def report() -> None:
        while not stop.is_set():
            sample = proc_sample()
            ticks, counters.tick_s = counters.tick_s, []
            line = {
                "t": time.time(),
                "cpu_s": sample.cpu_s if sample else 0.0,
                "rss_mib": sample.rss_mib if sample else 0.0,
                "tasks": counters.tasks_max,
                "tick_ms": [round(t * 1000, 3) for t in ticks],
                **{k: v for k, v in vars(counters).items() if k != "tick_s"},
            }
            counters.tasks_max = 0
            print(json.dumps(line), flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    reporter = asyncio.create_task(report())
    limit = float(config["max_runtime_s"])
    loop.call_later(limit, stop.set)  # never outlive the benchmark
    http = await serve_http(runtime, settings, config["port"]) if callbacks else None
    try:
        # idle until the parent has seeded the jobs and says "go" (or closes stdin)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), timeout=limit)
        await runtime.worker.run(stop)
    finally:
        await reporter
        if http is not None:
            server, serving = http
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 30)
        await runtime.close()


async def serve_http(runtime: Any, settings: Any, port: int) -> tuple[Any, asyncio.Task[None]]:
    """The real app on ``port``, in this (the worker's) process and loop, around ``runtime``."""
    from collections.abc import AsyncIterator as Iter

    import uvicorn

    from vidgate.api.app import create_api

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Iter[None]:
        app.state.runtime = runtime
        app.state.services = runtime.services
        yield

    runtime.start(loops=False)  # the job change listener (PostgreSQL); the worker runs below
    app = create_api(settings, lifespan=lifespan, base_url=runtime.base_url)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=4096
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # ours stay
    serving = asyncio.create_task(server.serve())
    for _ in range(1200):  # up to a minute
        if server.started or serving.done():
            break
        await asyncio.sleep(0.05)
    return server, serving


# ====================================================================== the parent


@dataclass
class Seeded:
    upstream_done_at: dict[str, float]  # job id -> epoch seconds the upstream reports it done
    seconds: float
    key: str = ""  # the API key the jobs belong to (for the watchers)


async def seed(url: str, fal_url: str, args: argparse.Namespace) -> Seeded:
    """Create ``--jobs`` live jobs and leave them running upstream, as a worker would."""
    import httpx

    from vidgate.catalog.loader import load_catalog
    from vidgate.clock import utcnow
    from vidgate.domain.request import GenerationRequest
    from vidgate.domain.states import JobStatus
    from vidgate.keyring import Keyring
    from vidgate.media.backends import storage_from_url
    from vidgate.providers.base import ProviderContext, Route, SubmitAttempt
    from vidgate.providers.fal import FalAdapter
    from vidgate.service.jobs import JobService
    from vidgate.service.lifecycle import JobLifecycle
    from vidgate.store import jobs as job_store
    from vidgate.store.engine import Database

    secret, principal = await make_key(url, "tracking", mode="live", credit_usd="1000000")
    db = Database(url, keyring=Keyring(b"bench-secret"))  # the worker's VIDGATE_SECRET_KEY
    catalog = load_catalog(None)
    lifecycle = JobLifecycle(db, catalog)
    storage = storage_from_url("", data_dir=Path(tempfile.mkdtemp(prefix="vg-bench-seed-")))
    service = JobService(db, catalog, storage, lifecycle, job_timeout_s=3600, availability=lambda spec: None)
    spec = catalog.get(MODEL)
    route_spec = next(r for r in spec.routes if r.provider == "fal")
    route = Route(provider="fal", model=route_spec.model, params=route_spec.params)
    done_at: dict[str, float] = {}
    gate = asyncio.Semaphore(args.seed_concurrency)
    start = time.monotonic()
    async with httpx.AsyncClient(
        timeout=30, limits=httpx.Limits(max_connections=args.seed_concurrency)
    ) as http:
        adapter: Any = (
            StubAdapter()
            if args.upstream == "stub"
            else FalAdapter(
                ProviderContext(
                    http=http,
                    api_key=FAL_KEY,
                    base_url=fal_url,
                    callback_url=f"{args.public_url}/callbacks/fal" if args.callbacks else None,
                )
            )
        )

        async def one(index: int) -> None:
            if args.seed_rate:
                await asyncio.sleep(max(0.0, start + index / args.seed_rate - time.monotonic()))
            async with gate:
                request = GenerationRequest(model=MODEL, prompt=f"benchmark job {index}", duration_s=5)
                job = (await service.submit(principal, request, dialect="native")).job
                ref = await adapter.submit(job.request, route, SubmitAttempt.first(job.id))
                done_at[job.id] = time.time() + args.latency
                now = utcnow()
                first_poll = now + timedelta(seconds=FIRST_POLL_SPREAD_S * index / args.jobs)
                async with db.transaction() as conn:
                    await job_store.transition(conn, job.id, JobStatus.SUBMITTING, now=now)
                    await job_store.transition(
                        conn,
                        job.id,
                        JobStatus.RUNNING,
                        now=now,
                        provider="fal",
                        upstream_model=route.model,
                        upstream_id=ref.id,
                        upstream_request_id=ref.request_id,
                        upstream_state=dict(ref.state),
                        attempts=0,
                        run_at=first_poll,
                    )

        await asyncio.gather(*(one(i) for i in range(args.jobs)))
    await db.dispose()
    return Seeded(done_at, time.monotonic() - start, secret)


async def status_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from vidgate.store.engine import Database
    from vidgate.store.tables import jobs

    db = Database(url, null_pool=True)
    try:
        async with db.read() as conn:
            rows = await conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
            return {str(status): int(count) for status, count in rows}
    finally:
        await db.dispose()


async def completion_times(url: str) -> dict[str, float]:
    from sqlalchemy import select

    from vidgate.store.engine import Database
    from vidgate.store.tables import jobs

    db = Database(url, null_pool=True)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(jobs.c.id, jobs.c.completed_at).where(jobs.c.completed_at.is_not(None))
            )
            return {job_id: at.timestamp() for job_id, at in rows}
    finally:
        await db.dispose()


TERMINAL = (b'"vidgate_status":"succeeded"', b'"vidgate_status":"failed"', b'"vidgate_status":"expired"')


@dataclass
class Watcher:
    job_id: str
    seen_at: float | None = None  # when the terminal event was in the client's hands
    error: str | None = None


async def watch_one(port: int, key: str, watcher: Watcher, opened: asyncio.Semaphore) -> None:
    """Follow one job on its events stream (a raw socket) until its terminal event."""
    writer = None
    try:
        async with opened:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"GET /v1/videos/{watcher.job_id}/events HTTP/1.1\r\nHost: bench\r\n"
                f"Authorization: Bearer {key}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace").splitlines()[0])
        tail = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("the stream ended before the terminal event")
            tail = tail[-64:] + chunk
            if any(marker in tail for marker in TERMINAL):
                watcher.seen_at = time.time()
                return
    except Exception as exc:
        watcher.error = repr(exc)
    finally:
        if writer is not None:
            writer.close()


class Reports:
    """The worker's JSON lines, read on a thread so a full pipe never stalls it."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.lines: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, args=(child,), daemon=True)
        self._thread.start()

    def _read(self, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            with contextlib.suppress(ValueError):
                self.lines.append(json.loads(raw))

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [line for line in self.lines if start <= line["t"] <= end]


def window_stats(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates and distributions over a run of report lines (first to last)."""
    if len(lines) < 2:
        return {}
    first, last = lines[0], lines[-1]
    wall = last["t"] - first["t"]

    def rate(name: str) -> float:
        return (last[name] - first[name]) / wall

    ticks = [t for line in lines[1:] for t in line["tick_ms"]]
    polls = last["polls"] - first["polls"]
    fetches = last["fetches"] - first["fetches"]
    return {
        "seconds": wall,
        "polls_per_s": rate("polls"),
        "steps_per_s": rate("steps"),
        "fetches_per_s": rate("fetches"),
        "fetch_ms_mean": 1000 * (last["fetch_s"] - first["fetch_s"]) / fetches if fetches else float("nan"),
        "poll_ms_mean": 1000 * (last["poll_s"] - first["poll_s"]) / polls if polls else float("nan"),
        "ticks_per_s": rate("ticks"),
        "tick_ms_p50": percentile(ticks, 50),
        "tick_ms_p95": percentile(ticks, 95),
        "tick_ms_max": max(ticks) if ticks else float("nan"),
        "leased_per_tick": (last["leased"] - first["leased"]) / max(1, last["ticks"] - first["ticks"]),
        "tx_per_s": rate("tx"),
        "tx_ms_mean": 1000 * (last["tx_s"] - first["tx_s"]) / max(1, last["tx"] - first["tx"]),
        "db_busy_pct": 100 * (rate("tx_s") + rate("read_s")),
        "cpu_pct": 100 * rate("cpu_s"),
        "rss_mib_max": max(line["rss_mib"] for line in lines),
        "tasks_max": max(line["tasks"] for line in lines[1:]),
    }


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\n== {kind}: {args.jobs} jobs, fake latency {args.latency:g} s, upstream {args.upstream}",
        flush=True,
    )
    with temp_folder("vg-bench-tracking-", keep=args.keep) as folder:
        if args.keep:
            print(f"   scratch folder (kept): {folder}")
        return asyncio.run(_run_one(kind, folder, args))


async def _run_one(kind: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    async with scratch_database(kind, folder) as url:
        with contextlib.ExitStack() as stack:
            fal_url = "stub://"
            fake_sample: ProcSample | None = None
            fake: subprocess.Popen[Any] | None = None
            if args.upstream == "fal":
                port = free_port()
                fal_url = f"http://127.0.0.1:{port}"
                fake = stack.enter_context(
                    process(
                        vidgate_command(
                            "fake-upstream",
                            "fal",
                            "--port",
                            str(port),
                            "--api-key",
                            FAL_KEY,
                            "--latency",
                            str(args.latency),
                        ),
                        log=folder / "fake.log",
                    )
                )
                wait_http(f"{fal_url}/.well-known/jwks.json", timeout_s=60, child=fake)
            http_port = free_port()
            args.public_url = f"http://127.0.0.1:{http_port}"
            config = {
                "callbacks": args.callbacks,
                "port": http_port,
                "data_dir": str(folder / "data"),
                "database_url": url,
                "fal_url": fal_url,
                "concurrency": args.concurrency,
                "poll_interval": args.poll_interval,
                "upstream": args.upstream,
                "max_runtime_s": args.latency + args.settle_timeout + 120,
            }
            env = {**os.environ, "BENCH_STUB_LATENCY_S": str(args.latency)}
            child = stack.enter_context(
                process(
                    [sys.executable, __file__, "--worker-child", json.dumps(config)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stdin=subprocess.PIPE,
                    log=folder / "worker.log",
                )
            )
            reports = Reports(child)
            deadline = time.monotonic() + 90
            while not reports.lines:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not start; see {folder / 'worker.log'}")
                await asyncio.sleep(0.1)
            print(f"   worker up (pid {child.pid}, idle); seeding jobs ...", flush=True)
            seeded = await seed(url, fal_url, args)
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
            seeded_at = time.time()
            print(f"   seeded {args.jobs} running jobs in {seeded.seconds:.1f} s; worker let go", flush=True)
            watchers: list[Watcher] = []
            watching: list[asyncio.Task[None]] = []
            if args.callbacks and args.watchers:
                step = max(1, args.jobs // args.watchers)
                watched = list(seeded.upstream_done_at)[::step][: args.watchers]
                opened = asyncio.Semaphore(32)
                watchers = [Watcher(job_id) for job_id in watched]
                watching = [
                    asyncio.create_task(watch_one(http_port, seeded.key, w, opened)) for w in watchers
                ]
            first_done = min(seeded.upstream_done_at.values())
            last_done = max(seeded.upstream_done_at.values())
            steady_from = seeded_at + WARM_UP_S
            if first_done - steady_from < 10:
                print("   WARNING: under 10 s of steady state; raise --latency", flush=True)
            if fake is not None:
                fake_sample = proc_sample(fake.pid)
            await asyncio.sleep(max(0.0, first_done - 0.5 - time.time()))
            steady = window_stats(reports.between(steady_from, first_done - 0.5))
            if steady.get("polls_per_s"):
                steady["poll_gap_s"] = args.jobs / steady["polls_per_s"]
            if fake is not None and fake_sample is not None and (fake_end := proc_sample(fake.pid)):
                steady["fake_cpu_pct"] = cpu_percent(fake_sample, fake_end)
            print(
                f"   all jobs done upstream from t+{first_done - seeded_at:.0f} s; waiting to settle",
                flush=True,
            )
            settle_deadline = last_done + args.settle_timeout
            counts: dict[str, int] = {}
            while time.time() < settle_deadline and child.poll() is None:
                counts = await status_counts(url)
                active = sum(
                    n for s, n in counts.items() if s in ("queued", "submitting", "running", "fetching")
                )
                if active == 0:
                    break
                await asyncio.sleep(1.0)
            settled_at = time.time()
            if watching:
                await asyncio.wait(watching, timeout=30)
            client_lags = [
                w.seen_at - seeded.upstream_done_at[w.job_id] for w in watchers if w.seen_at is not None
            ]
            watch_errors = [w.error for w in watchers if w.error]
            counts = await status_counts(url)
            completed = await completion_times(url)
            lags = [completed[j] - done for j, done in seeded.upstream_done_at.items() if j in completed]
            settle = window_stats(reports.between(first_done, settled_at))
            worker_end = proc_sample(child.pid)
    return {
        "db": kind,
        "jobs": args.jobs,
        "upstream": args.upstream,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "poll_interval_s": args.poll_interval,
        "seed_s": seeded.seconds,
        "steady": steady,
        "settle": settle,
        "counts": counts,
        "settled": len(lags),
        "settle_after_last_done_s": max(completed.values(), default=settled_at) - last_done
        if len(lags) == args.jobs
        else float("nan"),
        "lag_p50_s": percentile(lags, 50),
        "lag_p95_s": percentile(lags, 95),
        "lag_max_s": max(lags) if lags else float("nan"),
        "lag_p99_s": percentile(lags, 99),
        "callbacks": args.callbacks,
        "seed_rate": args.seed_rate,
        "watchers": len(watchers),
        "watchers_saw_end": len(client_lags),
        "client_lag_p50_s": percentile(client_lags, 50),
        "client_lag_p99_s": percentile(client_lags, 99),
        "client_lag_max_s": max(client_lags) if client_lags else float("nan"),
        "watch_errors": watch_errors[:5],
        "worker_peak_rss_mib": worker_end.peak_rss_mib if worker_end else float("nan"),
        "load_avg_after": load_avg(),
    }


def tables(args: argparse.Namespace, results: list[dict[str, Any]]) -> list[Table]:
    """The results as tables (printed by ``main`` here and by ``bench/run.py``)."""
    nan = float("nan")
    steady_columns = [
        ("polls/s", "polls_per_s"),
        ("s between polls of a job", "poll_gap_s"),
        ("poll ms", "poll_ms_mean"),
        ("tick (lease txn) ms p50", "tick_ms_p50"),
        ("p95", "tick_ms_p95"),
        ("max", "tick_ms_max"),
        ("leased/tick", "leased_per_tick"),
        ("txn/s", "tx_per_s"),
        ("txn ms", "tx_ms_mean"),
        ("DB busy %", "db_busy_pct"),
        ("worker CPU %", "cpu_pct"),
        ("RSS MiB", "rss_mib_max"),
        ("tasks", "tasks_max"),
        ("fake CPU %", "fake_cpu_pct"),
    ]
    found = [
        Table(
            f"Steady state: {args.jobs} jobs running upstream ({args.upstream}), one worker "
            f"(concurrency {args.concurrency}, tick every {args.poll_interval:g} s)",
            ["db", *(name for name, _ in steady_columns)],
            [[r["db"], *(r["steady"].get(key, nan) for _, key in steady_columns)] for r in results],
        ),
        Table(
            "Settling: from each job's 'done' upstream to 'succeeded' in vidgate"
            " (poll, fetch, probe, store, capture)",
            [
                "db",
                "settled",
                "succeeded",
                "all settled after last done, s",
                "lag p50 s",
                "p95",
                "p99",
                "max",
                "fetches/s",
                "fetch ms",
                "worker CPU %",
                "peak RSS MiB",
            ],
            [
                [
                    r["db"],
                    f"{r['settled']}/{r['jobs']}",
                    r["counts"].get("succeeded", 0),
                    r["settle_after_last_done_s"],
                    r["lag_p50_s"],
                    r["lag_p95_s"],
                    r["lag_p99_s"],
                    r["lag_max_s"],
                    r["settle"].get("fetches_per_s", nan),
                    r["settle"].get("fetch_ms_mean", nan),
                    r["settle"].get("cpu_pct", nan),
                    r["worker_peak_rss_mib"],
                ]
                for r in results
            ],
        ),
    ]
    if args.callbacks:
        found.append(
            Table(
                "With upstream callbacks: from 'done' upstream to the client holding the terminal event"
                " (GET /v1/videos/{id}/events)",
                ["db", "watchers", "saw the end", "client lag p50 s", "p99", "max", "store lag p99 s"],
                [
                    [
                        r["db"],
                        r["watchers"],
                        r["watchers_saw_end"],
                        r["client_lag_p50_s"],
                        r["client_lag_p99_s"],
                        r["client_lag_max_s"],
                        r["lag_p99_s"],
                    ]
                    for r in results
                ],
            )
        )
    return found


def parser() -> argparse.ArgumentParser:
    """The options and their defaults (also read by ``scenario_tracking``, for ``run.py``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000, help="live jobs tracked at once (default 2000)")
    parser.add_argument("--latency", type=float, default=45.0, help="seconds from submit to done upstream")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (default both)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="VIDGATE_WORKER_CONCURRENCY (default 64; the product default is 16)",
    )
    parser.add_argument("--poll-interval", type=float, default=0.5, help="VIDGATE_WORKER_POLL_INTERVAL_S")
    parser.add_argument(
        "--upstream", choices=("fal", "stub"), default="fal", help="HTTP fake or in-process stub"
    )
    parser.add_argument("--settle-timeout", type=float, default=120.0, help="give up settling after this")
    parser.add_argument("--seed-concurrency", type=int, default=8, help="jobs created at once while seeding")
    parser.add_argument(
        "--callbacks", action="store_true", help="upstream callbacks on (the worker also serves HTTP)"
    )
    parser.add_argument(
        "--watchers", type=int, default=500, help="with --callbacks: jobs followed on their events stream"
    )
    parser.add_argument("--seed-rate", type=float, default=0.0, help="jobs created per second (0: no cap)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs) for a look")
    parser.add_argument("--worker-child", help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = parser().parse_args()
    if args.worker_child:
        asyncio.run(worker_child(json.loads(args.worker_child)))
        return
    info = machine()
    print_machine(info)
    results = [run_one(kind, args) for kind in parse_dbs(args.db)]
    for table in tables(args, results):
        print_table(table.title, table.headers, table.rows)
    for r in results:
        if r["watch_errors"]:
            print(f"   {r['db']} watcher errors (first 5): {r['watch_errors']}")
    write_json(args.json, {"machine": info, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
