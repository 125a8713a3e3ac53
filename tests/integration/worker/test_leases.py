"""Leases: renewed while a step runs, handed back at once on shutdown; a last look at the deadline."""

from __future__ import annotations

import asyncio

from tests.integration.worker.conftest import Driver
from vidgate.clock import utcnow
from vidgate.domain.states import JobStatus
from vidgate.providers.base import UpstreamUnavailable
from vidgate.store import jobs as job_store


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


async def _poll_with_a_callback_meanwhile(driver: Driver, *, callback: bool) -> float:
    """One poll step that answers "running"; an upstream callback may arrive while it is out.
    Returns how soon the job is due next (seconds)."""
    driver.upstream.poll_script = ["running"]
    job_id = await driver.create()
    job = await driver.step(job_id)  # submitted: running
    assert job.status is JobStatus.RUNNING and job.upstream_id is not None
    driver.upstream.hang_poll = asyncio.Event()
    async with driver.gateway.services.db.transaction() as conn:
        await job_store.update_job(conn, job_id, now=utcnow(), run_at=utcnow())
    assert await driver.worker.tick() == 1
    await asyncio.wait_for(driver.upstream.polling.wait(), timeout=10)
    if callback:  # the upstream finished after answering the poll, and says so
        woken = await driver.gateway.services.lifecycle.wake_by_upstream(job.provider or "", job.upstream_id)
        assert woken is not None
    driver.upstream.hang_poll.set()
    await asyncio.wait(driver.worker._running, timeout=30)
    assert not driver.worker._running
    assert (await driver.job(job_id)).status is JobStatus.RUNNING
    return await driver.run_at_in(job_id)


async def test_a_callback_during_a_poll_keeps_the_job_due_now(driver: Driver) -> None:
    # The poll's "running" predates the callback: its back-off must not hide the news.
    assert await _poll_with_a_callback_meanwhile(driver, callback=True) <= 0


async def test_without_a_callback_a_running_job_backs_off(driver: Driver) -> None:
    assert await _poll_with_a_callback_meanwhile(driver, callback=False) > 0
