"""Scenario ``waiters``: clients waiting on one API process, ``bench/waiters.py`` made smaller.

Per database, ``run_one`` of ``bench/waiters.py``: live jobs written straight into a
scratch store, ONE server process (the real app under uvicorn, no worker loop) and one
SSE client (``GET /v1/videos/{id}/events``) per job. Figures: the server's CPU while
every client waits and nothing happens (over ``--seconds``), then the wake latency of
each changed job, from the change's commit to the client holding the event (in process
on SQLite, across processes through ``NOTIFY``/``LISTEN`` on PostgreSQL).

The options are ``bench/waiters.py``'s own (its ``parser()``), with ``RUN_ARGS`` on top
so that ``bench/run.py`` stays under 10 minutes: 500 waiters and 200 changes at 50 per
second here, where the standalone script defaults to 10,000 waiters and 2,000 changes
at 100 per second (opening a stream costs the server about 17 ms of CPU, so 10,000
take minutes to open). ``VIDGATE_BENCH_WAITERS_ARGS`` adds more of that script's
options, e.g. ``"--waiters 50 --changes 20"`` for a smoke test or ``"--mode wait"``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from typing import Any

import waiters
from _scenario import Context, Table

NAME = "waiters"
RUN_ARGS = ["--waiters", "500", "--changes", "200", "--rate", "50"]
ENV_ARGS = "VIDGATE_BENCH_WAITERS_ARGS"


def options(ctx: Context) -> argparse.Namespace:
    """``bench/waiters.py``'s defaults, then ``RUN_ARGS``, ``--seconds``, the env var."""
    argv = [*RUN_ARGS, "--quiet", f"{ctx.seconds:g}", *shlex.split(os.environ.get(ENV_ARGS, ""))]
    args = waiters.parser().parse_args(argv)
    args.db = ",".join(ctx.dbs)  # run_one is called per database below
    return args


async def run(ctx: Context) -> list[Table]:
    args = options(ctx)
    waiters.raise_fd_limit(args.waiters + 1000)
    results: list[dict[str, Any]] = []
    for kind in ctx.dbs:
        # run_one runs its own event loop (asyncio.run), so it gets a thread of its own
        result = await asyncio.to_thread(waiters.run_one, kind, args)
        ctx.log(
            f"waiters {kind}: {result['connected']}/{args.waiters} connected, "
            f"CPU {result['quiet_cpu_pct']:.1f}% while waiting, "
            f"wake p50 {result['lat_p50_ms']:.1f} ms p99 {result['lat_p99_ms']:.1f} ms"
        )
        if result["errors"]:
            ctx.log(f"waiters {kind} errors (first 5): {result['errors']}")
        results.append(result)
    ctx.record(NAME, {"args": vars(args), "results": results})
    return waiters.tables(args, results)


if __name__ == "__main__":
    from _scenario import main

    asyncio.run(main([sys.modules[__name__]]))
