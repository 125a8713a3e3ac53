"""Upstream callbacks only wake a job: twice, out of order, late or unknown, they change nothing."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.worker.conftest import Driver
from vidgate.domain.states import JobStatus
from vidgate.providers.base import CallbackRequest, CallbackResult
from vidgate.store import ledger as ledger_store


def _unverified(call: CallbackRequest) -> CallbackResult | None:
    body: Any = json.loads(call.body or b"null")
    upstream_id = body.get("id") if isinstance(body, dict) else None
    return CallbackResult(upstream_id=upstream_id, verified=False) if isinstance(upstream_id, str) else None


async def _call_back(driver: Driver, body: dict[str, Any]) -> int:
    answer = await driver.gateway.client.post("/callbacks/kling", json=body)
    return answer.status_code


async def test_duplicate_late_and_unknown_callbacks_change_nothing(driver: Driver) -> None:
    driver.upstream.parse_callback = _unverified  # type: ignore[method-assign]
    driver.upstream.poll_script = ["running"]
    job_id = await driver.create()
    running = await driver.step(job_id)
    assert running.status is JobStatus.RUNNING and running.upstream_id
    # Twice, and "out of order" (a callback says nothing; the worker's poll decides).
    assert await _call_back(driver, {"id": running.upstream_id, "status": "succeeded"}) == 200
    assert await _call_back(driver, {"id": running.upstream_id, "status": "running"}) == 200
    woken = await driver.job(job_id)
    assert woken.status is JobStatus.RUNNING and woken.run_at is not None
    assert (await driver.step(job_id)).status is JobStatus.RUNNING  # the poll said running
    done = await driver.step(job_id)
    assert done.status is JobStatus.SUCCEEDED
    # Late (the job has ended) and for a job nobody knows: accepted, and nothing moves.
    assert await _call_back(driver, {"id": running.upstream_id, "status": "succeeded"}) == 200
    assert await _call_back(driver, {"id": "up-nobody", "status": "failed"}) == 200
    assert await _call_back(driver, {"nonsense": True}) == 400
    after = await driver.job(job_id)
    assert after.status is JobStatus.SUCCEEDED and after.run_at is None
    assert after.charged_micros == done.charged_micros == done.held_micros
    async with driver.gateway.services.db.read() as conn:
        kinds = sorted(e.kind for e in await ledger_store.job_entries(conn, job_id))
    assert kinds == ["capture", "hold"]
