"""Crash run (issue 11): ~150 jobs through 2 API processes and 2 workers; mid-run one
worker (caught while it submits upstream, if possible) and one API process are
SIGKILLed and restarted. Nothing may be lost, charged twice or shown to a client as
a 5xx, and a job may reach the upstream twice at most once per killed worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.fault.clients import Load
from tests.fault.scenario import Background, Run, expect

pytestmark = [pytest.mark.fault, pytest.mark.timeout(240)]

JOBS = 150
KILLED_WORKERS = 1


def test_crash_run_loses_nothing_and_charges_once(fault_run: Callable[..., Run]) -> None:
    run = fault_run("crash")
    deployment = run.deployment
    load = Load(deployment.api_urls, deployment.secret, jobs=JOBS, clients=16, spread_s=15, deadline_s=90)
    clients = Background(load).start()

    # mid-run: a third of the jobs in, or 8 s after the start if the gateway is slower
    run.wait_accepted(load, JOBS // 3, timeout_s=8)
    worker, api = deployment.workers[0], deployment.apis[1]
    accepted_then = load.accepted
    how = run.kill_worker_mid_submit(worker)
    api.kill()
    killed_at = time.monotonic() - run.started
    api.start(wait=False)
    worker.start(wait=False)
    api.wait_ready(timeout_s=90)
    worker.wait_ready(timeout_s=90)

    clients.join(timeout_s=150)
    figures = run.collect(load)
    run.report(
        {
            "killed": f"{worker.name} ({how}) and {api.name} at {killed_at:.1f} s "
            f"with {accepted_then} jobs accepted; both restarted",
        }
    )

    f = figures
    expect(
        {
            "every requested job accepted": (f["jobs_accepted"] == JOBS, f["client_gave_up_reasons"]),
            "0 jobs lost": (f["lost"] == 0, f["lost_jobs"]),
            "every accepted job succeeded": (f["succeeded"] == f["jobs_accepted"], f["failure_reasons"]),
            "0 settled twice": (f["settled_twice"] == 0, f["settled_twice_jobs"]),
            "ledger drift 0 µUSD": (f["ledger_drift_micros"] == 0, f["ledger_drift_micros"]),
            "0 HTTP 5xx to clients": (f["http_5xx"] == 0, f["http_5xx_by_status"]),
            f"at most {KILLED_WORKERS} duplicate upstream submission(s)": (
                f["upstream_duplicates"] <= KILLED_WORKERS,
                f["upstream_duplicate_jobs"],
            ),
            "each duplicate counted as a possible duplicate": (
                f["upstream_duplicates"] <= (f["possible_duplicates_metric"] or 0),
                f"{f['upstream_duplicates']} duplicates, metric {f['possible_duplicates_metric']}",
            ),
        }
    )
