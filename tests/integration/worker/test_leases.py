"""Leases: renewed while a step runs, handed back at once on shutdown; a last look at the deadline."""

from __future__ import annotations

import asyncio

from tests.integration.worker.conftest import Driver
from vidgate.domain.states import JobStatus
from vidgate.providers.base import UpstreamUnavailable


async def test_a_stopping_worker_hands_its_leases_back_at_once(driver: Driver) -> None:
    gate = asyncio.Event()  # never set: the submit hangs until the worker gives up on it
    driver.upstream.hang_submit = gate
    job_id = await driver.create()
    worker = driver.worker
    worker.shutdown_grace_s = 0.5
    stop = asyncio.Event()
    runner = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(driver.upstream.entered.wait(), timeout=10)
    assert (await driver.job(job_id)).lease_owner == worker.owner
    stop.set()
    async with asyncio.timeout(30):
        await runner
    job = await driver.job(job_id)
    assert job.lease_owner is None and job.lease_expires_at is None
    assert job.run_at is not None and await driver.run_at_in(job_id) <= 0
    [attempt] = await driver.attempts(job_id)
    assert attempt.outcome == "pending"  # sent, answer never read: the next worker reconciles it


async def test_a_long_step_keeps_its_lease(driver: Driver) -> None:
    worker = driver.worker
    worker.lease_s = 0.6  # renewed every 0.2 s
    gate = asyncio.Event()
    driver.upstream.hang_submit = gate
    job_id = await driver.create()
    assert await worker.tick() == 1
    first = None
    for _ in range(4):
        await asyncio.sleep(0.3)
        job = await driver.job(job_id)
        assert job.lease_owner == worker.owner
        assert first is None or job.lease_expires_at > first
        first = job.lease_expires_at
    gate.set()
    await asyncio.wait(worker._running, timeout=30)
    assert (await driver.job(job_id)).status is JobStatus.RUNNING


async def test_a_running_job_at_its_deadline_is_polled_once_more(driver: Driver) -> None:
    driver.upstream.poll_script = ["running"]
    job_id = await driver.create()
    assert (await driver.step(job_id)).status is JobStatus.RUNNING
    assert (await driver.step(job_id)).status is JobStatus.RUNNING
    await driver.expire_soon(job_id, -1)
    job = await driver.step(job_id)  # past the deadline, but the upstream has finished
    assert job.status is JobStatus.SUCCEEDED


async def test_poll_errors_back_off_but_not_past_the_deadline(driver: Driver) -> None:
    driver.upstream.poll_script = [UpstreamUnavailable("502", status_code=502)] * 3
    job_id = await driver.create()
    await driver.step(job_id)
    await driver.expire_soon(job_id, 3)
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING
    assert job.run_at is not None and job.run_at <= job.deadline_at
