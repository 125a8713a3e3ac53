"""Submitting through a provider's key pool, one worker step at a time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.integration.worker.conftest import Driver, Scripted
from vidgate.domain.states import JobStatus
from vidgate.providers.base import Capability, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable
from vidgate.worker.key_pool import PoolKey


@dataclass
class TwoKeys:
    driver: Driver
    one: Scripted
    two: Scripted


@pytest.fixture
def keys(driver: Driver) -> TwoKeys:
    one, two = Scripted(), Scripted()
    driver.gateway.services.pool.install_keys("kling", [PoolKey("kling#1", one), PoolKey("kling#2", two)])  # type: ignore[arg-type]
    return TwoKeys(driver, one, two)


async def _attempts(driver: Driver, job_id: str) -> list[tuple[str | None, str]]:
    return [(a.upstream_key, a.outcome) for a in await driver.attempts(job_id)]


async def test_a_rate_limited_key_hands_the_submit_to_the_next_key(keys: TwoKeys) -> None:
    keys.one.script = [UpstreamRateLimited("slow down", status_code=429)]
    job_id = await keys.driver.create()
    job = await keys.driver.step(job_id)
    assert job.status is JobStatus.RUNNING and job.upstream_key == "kling#2"
    assert await _attempts(keys.driver, job_id) == [("kling#1", "refused"), ("kling#2", "accepted")]
    # and the poll that follows goes to the key that owns the upstream job
    keys.two.poll_script = ["running"]
    job = await keys.driver.step(job_id)
    assert job.status is JobStatus.RUNNING and not keys.two.poll_script and job.progress == 50


async def test_a_5xx_moves_on_to_the_next_route_not_the_next_key(keys: TwoKeys) -> None:
    keys.one.script = [UpstreamUnavailable("503", status_code=503)]
    job_id = await keys.driver.create()
    job = await keys.driver.step(job_id)
    # kling-3-pro's other route (fal) is not configured here: the job waits, the other key untried
    assert job.status is JobStatus.SUBMITTING
    assert await _attempts(keys.driver, job_id) == [("kling#1", "refused")]
    assert keys.two.created == []


async def test_an_open_breaker_pauses_one_key_only(keys: TwoKeys) -> None:
    pool = keys.driver.gateway.services.pool
    for _ in range(pool.breaker.threshold):
        pool.breaker.failure("kling#1")
    for _ in range(2):  # whichever key's turn it is, the paused one is never called
        job_id = await keys.driver.create()
        job = await keys.driver.step(job_id)
        assert job.status is JobStatus.RUNNING and job.upstream_key == "kling#2"
    assert keys.one.created == [] and len(keys.two.created) == 2


async def test_an_unknown_outcome_is_sent_again_with_the_same_key(keys: TwoKeys) -> None:
    """An idempotency key is per upstream account: the re-send must not go to the next key."""
    for upstream in (keys.one, keys.two):
        upstream.capabilities = frozenset({Capability.IDEMPOTENT_SUBMIT})
    keys.one.script = [UpstreamTimeout("read timeout", outcome_unknown=True)]
    job_id = await keys.driver.create()
    job = await keys.driver.step(job_id)
    assert job.status is JobStatus.SUBMITTING
    job = await keys.driver.step(job_id)  # the turn has moved on to kling#2, the re-send has not
    assert job.status is JobStatus.RUNNING and job.upstream_key == "kling#1"
    assert len(keys.one.created) == 1 and keys.two.created == []
    assert await _attempts(keys.driver, job_id) == [("kling#1", "unknown"), ("kling#1", "accepted")]
