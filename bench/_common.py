"""Helpers shared by the benchmark scripts in ``bench/``.

Nothing here is part of vidgate itself: it is scaffolding to start processes on
loopback ports, make scratch databases (SQLite files or PostgreSQL databases that
are dropped afterwards), read a process's memory and CPU from ``/proc``, and print
small result tables. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pg_admin_url() -> str:
    """Where scratch PostgreSQL databases are made (``VIDGATE_BENCH_PG_URL`` overrides)."""
    return os.environ.get("VIDGATE_BENCH_PG_URL", DEFAULT_PG_URL)


# ----------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    """What the numbers were measured on (goes at the top of every report)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_gib = int(first.split()[1]) / 1024 / 1024
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
        "load_avg": load_avg(),
    }


def load_avg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f}"


def print_machine(info: dict[str, Any]) -> None:
    print(
        f"# {info['date']}  {info['cpu']}  {info['cores']} cores  {info['memory_gib']} GiB  "
        f"Python {info['python']}  commit {info['commit']}  load {info['load_avg']}"
    )


# ----------------------------------------------------------- /proc accounting


@dataclass(frozen=True)
class ProcSample:
    at: float  # time.monotonic()
    cpu_s: float  # user + system seconds so far
    rss_mib: float
    peak_rss_mib: float  # VmHWM: the high-water mark of the resident set


def proc_sample(pid: int | None = None) -> ProcSample | None:
    """CPU time and memory of ``pid`` (default: this process), or None if it is gone."""
    base = Path(f"/proc/{pid or 'self'}")
    try:
        stat = (base / "stat").read_text()
        status = (base / "status").read_text()
    except (OSError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return ProcSample(time.monotonic(), cpu, values.get("VmRSS", 0.0), values.get("VmHWM", 0.0))


def cpu_percent(first: ProcSample, last: ProcSample) -> float:
    """CPU use between two samples, in % of one core."""
    wall = last.at - first.at
    return 100.0 * (last.cpu_s - first.cpu_s) / wall if wall > 0 else 0.0


# ----------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A small aligned text table (also valid Markdown)."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")

    def line(row: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            + " |"
        )

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print(line(row))


def write_json(path: str | None, data: Any) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))
        print(f"\nresults written to {path}")


# ------------------------------------------------------------------ databases


def _admin(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _pg_execute(url: str, statement: str) -> None:
    from sqlalchemy import text

    from vidgate.store.engine import Database

    db = Database(_admin(url, "postgres"), null_pool=True)
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def scratch_database(kind: str, folder: Path) -> AsyncIterator[str]:
    """A fresh, migrated database URL: ``sqlite`` (a file in ``folder``) or ``postgres``.

    A PostgreSQL scratch database is named ``vg_bench_<hex>`` and dropped (FORCE) at exit.
    """
    from vidgate.store.engine import Database
    from vidgate.store.migrate import migrate

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        name = None
    elif kind == "postgres":
        name = f"vg_bench_{uuid.uuid4().hex[:10]}"
        await _pg_execute(pg_admin_url(), f'CREATE DATABASE "{name}"')
        url = _admin(pg_admin_url(), name)
    else:
        raise ValueError(f"unknown database kind {kind!r} (sqlite or postgres)")
    try:
        db = Database(url, null_pool=True)
        try:
            await migrate(db)
        finally:
            await db.dispose()
        yield url
    finally:
        if name is not None:
            await _pg_execute(pg_admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def make_key(url: str, account: str, *, mode: str = "test", credit_usd: str = "0") -> tuple[str, Any]:
    """An account with one key and ``credit_usd`` on its balance; returns (secret, Principal)."""
    from decimal import Decimal

    from vidgate.billing.accounts import ensure_account, issue_key, top_up
    from vidgate.domain.job import Principal
    from vidgate.keyring import Keyring
    from vidgate.money import micros_from_usd
    from vidgate.store.engine import Database

    # the keyring of a gateway configured with VIDGATE_SECRET_KEY=bench-secret (bench_env)
    db = Database(url, null_pool=True, keyring=Keyring(b"bench-secret"))
    try:
        async with db.transaction() as conn:
            row = await ensure_account(conn, account)
            issued = await issue_key(conn, row, mode="test" if mode == "test" else "live")
            if Decimal(credit_usd) > 0:
                await top_up(conn, row, micros=micros_from_usd(credit_usd), mode=issued.mode)
    finally:
        await db.dispose()
    return issued.secret, Principal(row.id, row.name, issued.id, issued.mode)


def parse_dbs(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    for kind in kinds:
        if kind not in ("sqlite", "postgres"):
            raise SystemExit(f"--db takes sqlite, postgres or both (comma-separated), not {kind!r}")
    return kinds


# ------------------------------------------------------------------ processes


def free_port() -> int:
    from vidgate.testing.server import free_port as _free_port

    return _free_port()


@contextlib.contextmanager
def temp_folder(prefix: str, keep: bool = False) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def process(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    stdout: Any = None,
    stdin: Any = None,
) -> Iterator[subprocess.Popen[Any]]:
    """Start a child process (``env`` replaces the environment when given).

    At exit the child is stopped: SIGTERM, then SIGKILL after 10 s.
    """
    handle = log.open("wb") if log is not None else None
    child = subprocess.Popen(
        list(args),
        env=env if env is not None else dict(os.environ),
        stdout=stdout if stdout is not None else (handle or subprocess.DEVNULL),
        stderr=handle or subprocess.DEVNULL,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
        if handle is not None:
            handle.close()


def wait_http(url: str, *, timeout_s: float, child: subprocess.Popen[Any] | None = None) -> float:
    """Wait until ``url`` answers (any status below 500); returns the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout_s
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise RuntimeError(f"{child.args!r} exited with {child.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return time.monotonic() - start
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:g} s")


def vidgate_command(*args: str) -> list[str]:
    """``python -m vidgate ARGS`` with this interpreter."""
    return [sys.executable, "-m", "vidgate", *args]


def bench_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway process under benchmark (no inherited VIDGATE_* noise)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        VIDGATE_DATA_DIR=str(data_dir),
        VIDGATE_DATABASE_URL=database_url,
        VIDGATE_SECRET_KEY="bench-secret",
        VIDGATE_LOG_LEVEL="warning",
    )
    env.update(extra)
    return env


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
