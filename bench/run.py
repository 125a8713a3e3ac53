"""Every benchmark scenario, each beside its baseline, in one command (under 10 minutes).

    .venv/bin/python bench/run.py [--db sqlite,postgres] [--seconds 5] [--only api,worker]
                                  [--profile DIR] [--json FILE] [--src OTHER/src]

Scenarios (add yours to ``SCENARIOS``; each is a module with ``NAME`` and ``run``):

- ``api``: polls, submits and ``/healthz`` through ``vidgate serve --no-worker`` on
  each database, beside a bare FastAPI and a bare Starlette app serving the same JSON;
- ``worker``: poll latency at one client while the worker in the same process re-hosts
  outputs (the all-in-one ``vidgate serve``) beside the API alone, and its RSS;
- ``litellm``: vidgate and LiteLLM's proxy on one fake OpenAI-videos upstream.

``--src`` serves vidgate from another source tree (a checkout of older code) with this
benchmark, which is how the "before" numbers in docs/benchmarks.md were made.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario_api
import scenario_worker
import vs_litellm
from _scenario import main

SCENARIOS = [scenario_api, scenario_worker, vs_litellm]

if __name__ == "__main__":
    asyncio.run(main(SCENARIOS))
