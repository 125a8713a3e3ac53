"""Every benchmark scenario, each beside its baseline, in one command (under 10 minutes).

    .venv/bin/python bench/run.py [--db sqlite,postgres] [--seconds 5] [--only api,worker]
                                  [--profile DIR] [--json FILE] [--src OTHER/src]

Scenarios (add yours to ``SCENARIOS``; each is a module with ``NAME`` and ``run``):

- ``api``: polls, submits and ``/healthz`` through ``vidgate serve --no-worker`` on
  each database, beside a bare FastAPI and a bare Starlette app serving the same JSON;
- ``worker``: poll latency at one client while the worker in the same process re-hosts
  outputs (the all-in-one ``vidgate serve``) beside the API alone, and its RSS;
- ``litellm``: vidgate and LiteLLM's proxy on one fake OpenAI-videos upstream;
- ``waiters``: SSE clients waiting on one API process on each database: its CPU while
  they wait, then the wake latency of changed jobs (``bench/waiters.py``, 500 waiters
  here; the script alone runs 10,000);
- ``tracking``: one worker tracking live jobs with upstream callbacks on each database:
  the lag from "done upstream" to succeeded, p99 included (``bench/tracking.py
  --callbacks``, 100 jobs here; the script alone runs 2,000).

``VIDGATE_BENCH_WAITERS_ARGS`` and ``VIDGATE_BENCH_TRACKING_ARGS`` pass more options of
those two scripts (e.g. ``"--waiters 50 --changes 20"`` for a quick check).

``--src`` serves vidgate from another source tree (a checkout of older code) with this
benchmark, which is how the "before" numbers in docs/benchmarks.md were made (the
``waiters`` and ``tracking`` scenarios do not follow it: their children import vidgate
as this interpreter finds it).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario_api
import scenario_tracking
import scenario_waiting
import scenario_worker
import vs_litellm
from _scenario import main

SCENARIOS = [scenario_api, scenario_worker, vs_litellm, scenario_waiting, scenario_tracking]

if __name__ == "__main__":
    asyncio.run(main(SCENARIOS))
