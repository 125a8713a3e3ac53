"""What a benchmark scenario gets (``Context``) and gives back (``Table``), and the
runner that prints them. A scenario is a module in ``bench/`` with ``NAME`` and
``async def run(ctx: Context) -> list[Table]``; ``bench/run.py`` lists them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from _common import machine, print_machine, print_table, temp_folder, write_json

PY_SPY = os.environ.get("VIDGATE_BENCH_PY_SPY", "/tmp/vidgate-bench-tools/bin/py-spy")


@dataclass
class Table:
    title: str
    headers: Sequence[str]
    rows: list[list[Any]]


@dataclass
class Context:
    folder: Path
    dbs: list[str]
    seconds: float = 5.0
    src: str | None = None  # run the servers on this source tree (e.g. a checkout of the old code)
    profile_dir: Path | None = None  # py-spy flame graphs of the measured server, when set
    raw: dict[str, Any] = field(default_factory=dict)

    def server_env(self, env: dict[str, str] | None) -> dict[str, str]:
        """The environment for a server under test (with ``--src`` first on its path)."""
        out = dict(env if env is not None else os.environ)
        if self.src:
            out["PYTHONPATH"] = self.src + os.pathsep + out.get("PYTHONPATH", "")
        return out

    def log(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def record(self, name: str, data: Any) -> None:
        self.raw[name] = data

    @contextlib.contextmanager
    def profiling(self, name: str, pid: int) -> Iterator[None]:
        """py-spy ``record`` of ``pid`` while the block runs (only with ``--profile``)."""
        if self.profile_dir is None or not Path(PY_SPY).exists():
            yield
            return
        out = self.profile_dir / f"{name}.txt"
        spy = subprocess.Popen(
            [
                PY_SPY,
                "record",
                "--nonblocking",
                "--gil",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=20)
            except subprocess.TimeoutExpired:
                spy.kill()


async def main(scenarios: Sequence[ModuleType], argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="vidgate benchmarks: every scenario beside its baseline")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--src", help="serve vidgate from this src/ folder instead (for 'before')")
    parser.add_argument("--profile", help="write py-spy profiles of the measured servers here")
    parser.add_argument("--json", help="also write the raw numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    info = machine()
    print_machine(info)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    started = time.monotonic()
    with temp_folder("vg-bench-", keep=args.keep) as folder:
        ctx = Context(folder, [d for d in args.db.split(",") if d], args.seconds, args.src)
        if args.profile:
            ctx.profile_dir = Path(os.path.abspath(args.profile))  # noqa: ASYNC240
            os.makedirs(ctx.profile_dir, exist_ok=True)
        for module in scenarios:
            if only and module.NAME not in only:
                continue
            print(f"\n## scenario {module.NAME}", flush=True)
            (folder / module.NAME).mkdir(exist_ok=True)
            ctx.folder = folder / module.NAME
            for table in await module.run(ctx):
                print_table(table.title, table.headers, table.rows)
    print(
        f"\n# all scenarios in {time.monotonic() - started:.0f} s; load at the end {os.getloadavg()[0]:.1f}"
    )
    write_json(args.json, {"machine": info, "args": vars(args), "results": ctx.raw})


def executable(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).parent / name)
