"""Submitting rides through transient upstream trouble and never loses track of upstream work."""

from __future__ import annotations

import asyncio

from tests.integration.worker.conftest import Driver
from vidgate.clock import utcnow
from vidgate.domain.states import JobStatus
from vidgate.providers.base import (
    Capability,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamContentPolicy,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vidgate.store import jobs as job_store


async def test_a_5xx_at_submit_reschedules_and_the_job_then_succeeds(driver: Driver) -> None:
    driver.upstream.script = [UpstreamUnavailable("503 from upstream", status_code=503)]
    job_id = await driver.create()
    job = await driver.step(job_id)
    assert job.status is JobStatus.SUBMITTING and job.lease_owner is None
    assert 0 < await driver.run_at_in(job_id) <= 15
    [refused] = await driver.attempts(job_id)
    assert refused.outcome == "refused" and refused.error_code == "upstream_unavailable"
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING and job.upstream_id == "up-1"
    job = await driver.step(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.charged_micros == job.held_micros
    assert [a.outcome for a in await driver.attempts(job_id)] == ["refused", "accepted"]


async def test_a_429_honours_retry_after(driver: Driver) -> None:
    driver.upstream.script = [UpstreamRateLimited("slow down", status_code=429, retry_after_s=7)]
    job_id = await driver.create()
    await driver.step(job_id)
    assert 6 <= await driver.run_at_in(job_id) <= 7.5


async def test_an_open_breaker_delays_a_job_and_never_fails_it(driver: Driver) -> None:
    pool = driver.gateway.services.pool
    for _ in range(pool.breaker.threshold):
        pool.breaker.failure("kling")
    job_id = await driver.create()
    job = await driver.step(job_id)
    assert job.status is JobStatus.SUBMITTING and job.error_code is None
    assert await driver.attempts(job_id) == []  # nothing was sent while the circuit was open
    assert await driver.run_at_in(job_id) > 0
    pool.breaker.success("kling")
    assert (await driver.step(job_id)).status is JobStatus.RUNNING


async def test_a_permanent_refusal_fails_the_job_with_its_reason_and_refunds(driver: Driver) -> None:
    driver.upstream.script = [UpstreamContentPolicy("the prompt was refused by the upstream")]
    job_id = await driver.create()
    job = await driver.step(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error_code == "content_policy_violation" and "refused" in (job.error_message or "")
    assert job.refunded_micros == job.held_micros


async def test_an_auth_error_on_the_only_route_fails_the_job(driver: Driver) -> None:
    driver.upstream.script = [UpstreamAuthError("bad upstream key", status_code=401)]
    job_id = await driver.create()
    job = await driver.step(job_id)
    assert job.status is JobStatus.FAILED and job.error_code == "upstream_auth_error"


async def test_backoff_never_carries_a_job_past_its_deadline(driver: Driver) -> None:
    driver.upstream.script = [UpstreamRateLimited("slow down", status_code=429, retry_after_s=60)]
    job_id = await driver.create()
    await driver.expire_soon(job_id, 5)
    job = await driver.step(job_id)
    assert job.run_at is not None and job.run_at <= job.deadline_at


async def test_a_job_out_of_time_says_what_the_upstream_last_answered(driver: Driver) -> None:
    driver.upstream.script = [UpstreamUnavailable("503 from upstream", status_code=503)]
    job_id = await driver.create()
    await driver.step(job_id)
    await driver.expire_soon(job_id, -1)
    job = await driver.step(job_id)
    assert job.status is JobStatus.EXPIRED and job.refunded_micros == job.held_micros
    assert "503 from upstream" in (job.error_message or "")


async def test_an_unknown_outcome_is_adopted_when_the_upstream_can_find_it(driver: Driver) -> None:
    driver.upstream.capabilities = frozenset({Capability.CANCEL, Capability.FIND})
    driver.upstream.script = [UpstreamTimeout("read timed out", outcome_unknown=True)]
    job_id = await driver.create()
    job = await driver.step(job_id)
    assert job.status is JobStatus.SUBMITTING
    assert [a.outcome for a in await driver.attempts(job_id)] == ["unknown"]
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING and job.upstream_id == "up-1"
    assert len(driver.upstream.of(job_id)) == 1  # adopted, not sent again
    attempts = await driver.attempts(job_id)
    assert [a.outcome for a in attempts] == ["accepted"] and not attempts[0].possible_duplicate


async def test_an_unknown_outcome_is_resent_under_the_same_key_where_the_upstream_dedupes(
    driver: Driver,
) -> None:
    driver.upstream.capabilities = frozenset({Capability.IDEMPOTENT_SUBMIT})
    driver.upstream.script = [UpstreamProtocolError("unreadable 200 answer", outcome_unknown=True)]
    job_id = await driver.create()
    await driver.step(job_id)
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING and job.upstream_id == "up-1"
    assert len(driver.upstream.of(job_id)) == 1
    assert [a.possible_duplicate for a in await driver.attempts(job_id)] == [False, False]


async def test_an_unfindable_unknown_outcome_is_resent_and_counted_as_a_possible_duplicate(
    driver: Driver,
) -> None:
    driver.upstream.script = [UpstreamTimeout("read timed out", outcome_unknown=True)]
    job_id = await driver.create()
    await driver.step(job_id)
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING and job.upstream_id == "up-2"
    attempts = await driver.attempts(job_id)
    assert [(a.outcome, a.possible_duplicate) for a in attempts] == [("unknown", False), ("accepted", True)]


async def test_a_worker_that_died_mid_submit_leaves_an_attempt_the_next_one_reconciles(
    driver: Driver,
) -> None:
    driver.upstream.capabilities = frozenset({Capability.CANCEL, Capability.FIND})
    job_id = await driver.create()
    async with driver.gateway.services.db.transaction() as conn:
        assert await job_store.transition(conn, job_id, JobStatus.SUBMITTING, now=utcnow())
    # The dead worker: recorded its attempt, the upstream took it, and then it died.
    await driver.gateway.services.attempts.record(job_id, provider="kling", route_index=0, upstream_model="x")
    driver.upstream._create(SubmitAttempt(job_id, 1, f"vg_{job_id}"))
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING and job.upstream_id == "up-1"
    assert len(driver.upstream.of(job_id)) == 1


async def test_a_job_canceled_while_submitting_cancels_the_upstream_job(driver: Driver) -> None:
    gate = asyncio.Event()
    driver.upstream.hang_submit = gate
    job_id = await driver.create()
    assert await driver.worker.tick() == 1
    await asyncio.wait_for(driver.upstream.entered.wait(), timeout=10)
    canceled = await driver.gateway.client.post(
        f"/v1/videos/{job_id}/cancel", headers={"Authorization": f"Bearer {driver.key}"}
    )
    assert canceled.status_code == 200, canceled.text
    gate.set()
    await asyncio.wait(driver.worker._running, timeout=30)
    [upstream_job] = driver.upstream.of(job_id)
    assert upstream_job.canceled
    job = await driver.job(job_id)
    assert job.status is JobStatus.CANCELED and job.refunded_micros == job.held_micros
