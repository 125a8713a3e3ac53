"""Database restart (issue 11): the whole deployment runs on a PRIVATE PostgreSQL
cluster (initdb + pg_ctl as the postgres user, in a temp dir, on a free port), which
is stopped under load for a few seconds and started again. Clients must see 503 with
``Retry-After`` while it is down, never a 500, and normal answers within 5 s of its
return. The machine's shared PostgreSQL server is never touched."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fault.clients import Load
from tests.fault.infra import PrivateCluster, create_database, postgres_bin
from tests.fault.procs import wait_until
from tests.fault.scenario import Background, Run, expect

pytestmark = [pytest.mark.fault, pytest.mark.timeout(240)]

JOBS = 80
OUTAGE_S = 4.0
RECOVERY_S = 5.0


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[PrivateCluster]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    cluster = PrivateCluster(bin_dir, tmp_path)
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.destroy()


def _first_normal_answer(url: str, secret: str, *, timeout_s: float) -> float:
    """Seconds until ``GET /v1/account`` answers 200 on ``url``."""

    def normal() -> bool:
        try:
            answer = httpx.get(f"{url}/v1/account", headers={"Authorization": f"Bearer {secret}"}, timeout=2)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    return wait_until(f"{url} answers normally", normal, timeout_s=timeout_s, interval_s=0.05)


def test_database_restart_gives_503_then_recovers(
    private_pg: PrivateCluster, fault_run: Callable[..., Run]
) -> None:
    run = fault_run("db-restart", database_url=create_database(private_pg.url))
    deployment = run.deployment
    load = Load(deployment.api_urls, deployment.secret, jobs=JOBS, clients=12, spread_s=25, deadline_s=100)
    clients = Background(load).start()
    run.wait_accepted(load, JOBS // 4, timeout_s=15)

    down_at = time.monotonic()
    private_pg.stop("fast")  # under load: pooled connections are cut
    stopped_s = time.monotonic() - down_at
    # the outage lasts OUTAGE_S, and the clients keep asking meanwhile
    wait_until(
        "an outage of the planned length with client traffic in it",
        lambda: (
            time.monotonic() - down_at >= OUTAGE_S
            and any(a.at > down_at + stopped_s for a in list(load.answers))
        ),
        timeout_s=OUTAGE_S + 15,
    )
    private_pg.start()  # returns once it accepts connections
    up_at = time.monotonic()
    recovery = {
        url: round(_first_normal_answer(url, deployment.secret, timeout_s=30), 2)
        for url in deployment.api_urls
    }
    clients.join(timeout_s=150)

    f = run.collect(load)
    answers = list(load.answers)
    during = [a for a in answers if down_at <= a.at <= up_at]
    after = [a for a in answers if a.at > up_at + RECOVERY_S]
    unavailable_during = [a for a in during if a.status == 503]
    run.report(
        {
            "outage_s": round(up_at - down_at, 1),
            "answers_during_outage": dict(Counter(str(a.status) for a in during)),
            "recovery_s_by_api": recovery,
            "not_normal_after_recovery": sum(1 for a in after if a.status is None or a.status >= 500),
        }
    )

    http_500s = {code: n for code, n in f["http_5xx_by_status"].items() if code != "503"}
    expect(
        {
            "0 HTTP 500s": (not http_500s, http_500s),
            "503s with Retry-After while it is down": (
                bool(unavailable_during) and all(a.retry_after for a in unavailable_during),
                f"{len(unavailable_during)} 503s during the outage, "
                f"{sum(1 for a in unavailable_during if not a.retry_after)} without Retry-After; "
                f"answers then: {f['answers_during_outage']}",
            ),
            "every 503 carries Retry-After": (
                f["http_503_without_retry_after"] == 0,
                f["http_503_without_retry_after"],
            ),
            f"normal answers within {RECOVERY_S:.0f} s of its return": (
                all(s <= RECOVERY_S for s in recovery.values()) and f["not_normal_after_recovery"] == 0,
                f"first normal answer after {recovery}; "
                f"{f['not_normal_after_recovery']} 5xx or unanswered after {RECOVERY_S:.0f} s",
            ),
        }
    )
