"""Scenario ``tracking``: one worker tracking live jobs with upstream callbacks, smaller.

Per database, ``run_one`` of ``bench/tracking.py`` with ``--callbacks``: a fake fal
queue in its own process reports each job done ``--latency`` seconds after it was
submitted and posts its signed webhook; ONE worker process (the real ``Worker``, also
serving HTTP for the callbacks and the events streams) tracks every job until it has
settled, while ``--watchers`` of the jobs are followed by clients on
``GET /v1/videos/{id}/events``. Figures: the steady state (polls, lease transaction,
worker CPU), then the lag from "done upstream" to "succeeded in the store" (p50, p95,
p99, max) and to "the client holds the terminal event".

The options are ``bench/tracking.py``'s own (its ``parser()``), with ``RUN_ARGS`` on
top so that ``bench/run.py`` stays under 10 minutes: 100 jobs done 25 s after
submission (seeding them takes about 5 s, and the steady state wants 10 s more) and
30 watchers here, where the standalone script defaults to 2,000 jobs and 45 s (and
runs without callbacks unless told). Most of the two minutes or so this scenario takes
on both databases is start-up and that latency, not the jobs. ``VIDGATE_BENCH_TRACKING_ARGS``
adds more of that script's options, e.g. ``"--jobs 20 --watchers 5"`` for a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from typing import Any

import tracking
from _scenario import Context, Table

NAME = "tracking"
RUN_ARGS = ["--callbacks", "--jobs", "100", "--latency", "25", "--watchers", "30", "--settle-timeout", "60"]
ENV_ARGS = "VIDGATE_BENCH_TRACKING_ARGS"


def options(ctx: Context) -> argparse.Namespace:
    """``bench/tracking.py``'s defaults, then ``RUN_ARGS``, then the env var."""
    argv = [*RUN_ARGS, *shlex.split(os.environ.get(ENV_ARGS, ""))]
    args = tracking.parser().parse_args(argv)
    args.db = ",".join(ctx.dbs)  # run_one is called per database below
    return args


async def run(ctx: Context) -> list[Table]:
    args = options(ctx)
    results: list[dict[str, Any]] = []
    for kind in ctx.dbs:
        # run_one runs its own event loop (asyncio.run), so it gets a thread of its own
        result = await asyncio.to_thread(tracking.run_one, kind, args)
        ctx.log(
            f"tracking {kind}: {result['settled']}/{args.jobs} settled, "
            f"lag p99 {result['lag_p99_s']:.2f} s (store), {result['client_lag_p99_s']:.2f} s (client)"
        )
        if result["watch_errors"]:
            ctx.log(f"tracking {kind} watcher errors (first 5): {result['watch_errors']}")
        results.append(result)
    ctx.record(NAME, {"args": vars(args), "results": results})
    return tracking.tables(args, results)


if __name__ == "__main__":
    from _scenario import main

    asyncio.run(main([sys.modules[__name__]]))
