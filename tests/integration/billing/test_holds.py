"""Holds under pressure: concurrency, crashes, duplicate settlement, spend caps, test vs live money."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import ValidationError

from tests.conftest import Gateway, auth
from vidgate.clock import utcnow
from vidgate.domain.job import MediaInfo
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus
from vidgate.store import jobs as job_store
from vidgate.store import ledger as ledger_store

SORA_4S = {"model": "sora-2", "prompt": "p", "seconds": "4"}  # 4 credits x $0.01 = $0.04


async def _ledger_consistent(gateway: Gateway, account_id: str, mode: str = "test") -> tuple[int, int]:
    async with gateway.services.db.read() as conn:
        balance = await ledger_store.balance(conn, account_id, mode)
        sums = await ledger_store.entry_sums(conn, account_id, mode)
    assert balance == sums, "the running balance must equal the sum of the ledger entries"
    return balance.available_micros, balance.held_micros


async def test_fifty_concurrent_submits_accept_exactly_ten(idle_gateway: Gateway) -> None:
    key, principal = await idle_gateway.account(credit="0.40")

    async def submit() -> int:
        response = await idle_gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)
        return response.status_code

    statuses = await asyncio.gather(*(submit() for _ in range(50)))
    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 40
    available, held = await _ledger_consistent(idle_gateway, principal.account_id)
    assert available == 0 and held == 400_000
    page = await idle_gateway.services.jobs.list(principal, limit=100)
    assert len(page.jobs) == 10


async def test_duplicate_settlement_settles_once(idle_gateway: Gateway) -> None:
    key, principal = await idle_gateway.account(credit="1")
    job_id = (await idle_gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)).json()["id"]
    svc = idle_gateway.services
    now = utcnow()
    async with svc.db.transaction() as conn:
        for target in (JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.FETCHING):
            assert await job_store.transition(conn, job_id, target, now=now)
    job = await svc.jobs.get(principal, job_id)
    media = MediaInfo("k", None, 4.0, 1280, 720, "h264", 10)

    async def settle(target: JobStatus) -> bool:
        return await svc.lifecycle.finish(
            job.id, target, media=media if target is JobStatus.SUCCEEDED else None
        )

    results = await asyncio.gather(
        settle(JobStatus.SUCCEEDED), settle(JobStatus.FAILED), settle(JobStatus.SUCCEEDED)
    )
    assert sorted(results) == [False, False, True]
    async with svc.db.read() as conn:
        kinds = [e.kind for e in await ledger_store.job_entries(conn, job_id)]
    assert kinds.count("hold") == 1
    assert kinds.count("capture") + kinds.count("release") >= 1
    assert kinds.count("capture") <= 1 and kinds.count("release") <= 1
    _available, held = await _ledger_consistent(idle_gateway, principal.account_id)
    assert held == 0


async def test_worker_crash_mid_flight_settles_exactly_once(idle_gateway: Gateway) -> None:
    """A worker leases the job and dies; after its lease lapses another worker finishes it."""
    svc = idle_gateway.services
    key, principal = await idle_gateway.account(credit="1")
    job_id = (await idle_gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)).json()["id"]
    now = utcnow()
    async with svc.db.transaction() as conn:  # the dead worker got as far as leasing it
        leased = await job_store.lease_due(
            conn, owner="dead-worker", now=now, until=now + timedelta(seconds=1), limit=1
        )
    assert [j.id for j in leased] == [job_id]
    assert await idle_gateway.runtime.worker.tick() == 0  # nothing: the lease still holds
    assert (await svc.jobs.get(principal, job_id)).status is JobStatus.QUEUED
    await asyncio.sleep(1.1)  # the lease lapses (a real second, on purpose: leases are wall-clock)
    await idle_gateway.runtime.worker.drain(timeout_s=30)
    job = await svc.jobs.get(principal, job_id)
    assert job.status is JobStatus.SUCCEEDED and job.charged_micros == job.held_micros
    async with svc.db.read() as conn:
        kinds = sorted(e.kind for e in await ledger_store.job_entries(conn, job_id))
    assert kinds == ["capture", "hold"]
    await _ledger_consistent(idle_gateway, principal.account_id)


async def test_deadline_expires_a_hanging_job_and_releases(gateway: Gateway) -> None:
    svc = gateway.services
    key, principal = await gateway.account(credit="1")
    svc.jobs.job_timeout_s = 1
    job_id = (
        await gateway.client.post(
            "/v1/videos", headers=auth(key), json={**SORA_4S, "prompt": "simulate:hang"}
        )
    ).json()["id"]
    done = await gateway.wait_terminal(f"/v1/videos/{job_id}", key, timeout_s=30)
    assert done["vidgate_status"] == "expired" and done["error"]["code"] == "timeout"
    available, held = await _ledger_consistent(gateway, principal.account_id)
    assert held == 0 and available == 1_000_000


async def test_spend_caps_refuse_with_a_message_naming_the_cap(idle_gateway: Gateway) -> None:
    key, _ = await idle_gateway.account(credit="10", spend_cap_total_micros=100_000)
    assert (await idle_gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)).status_code == 200
    assert (await idle_gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)).status_code == 200
    third = await idle_gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)
    assert third.status_code == 402 and "total spend cap" in third.json()["error"]["message"]

    key_daily, _ = await idle_gateway.account("daily", credit="10", spend_cap_daily_micros=50_000)
    assert (
        await idle_gateway.client.post("/v1/videos", headers=auth(key_daily), json=SORA_4S)
    ).status_code == 200
    second = await idle_gateway.client.post("/v1/videos", headers=auth(key_daily), json=SORA_4S)
    assert second.status_code == 402 and "daily spend cap" in second.json()["error"]["message"]


async def test_released_holds_give_cap_room_back(gateway: Gateway) -> None:
    key, _principal = await gateway.account(credit="10", spend_cap_total_micros=40_000)
    first = (
        await gateway.client.post(
            "/v1/videos", headers=auth(key), json={**SORA_4S, "prompt": "simulate:fail"}
        )
    ).json()
    await gateway.wait_terminal(f"/v1/videos/{first['id']}", key)
    again = await gateway.client.post("/v1/videos", headers=auth(key), json=SORA_4S)
    assert again.status_code == 200, again.text


async def test_test_money_and_live_money_never_mix(idle_gateway: Gateway) -> None:
    test_key, _principal = await idle_gateway.account("mixed", credit="1", mode="test")
    live_key, _ = await idle_gateway.account("mixed", credit="0", mode="live")
    assert (
        await idle_gateway.client.post("/v1/videos", headers=auth(test_key), json=SORA_4S)
    ).status_code == 200
    live = await idle_gateway.client.post("/v1/videos", headers=auth(live_key), json=SORA_4S)
    # no live balance (and no configured upstream): refused, and test credit is untouched
    assert live.status_code in (400, 402)
    account = (await idle_gateway.client.get("/v1/account", headers=auth(live_key))).json()
    assert account["mode"] == "live" and account["balance"] == "0.00" and account["held"] == "0.00"
    test_jobs = (await idle_gateway.client.get("/v1/videos", headers=auth(test_key))).json()["data"]
    assert len(test_jobs) == 1
    assert (await idle_gateway.client.get("/v1/videos", headers=auth(live_key))).json()["data"] == []


async def test_quote_creates_and_charges_nothing(gateway: Gateway) -> None:
    key, principal = await gateway.account(credit="1")
    quote = await gateway.client.post("/v1/quotes", headers=auth(key), json={**SORA_4S, "seconds": "8"})
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert body["amount"] == "0.08" and body["credits"] == 8 and body["sufficient"] is True
    assert body["breakdown"]
    assert (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"] == []
    available, held = await _ledger_consistent(gateway, principal.account_id)
    assert (available, held) == (1_000_000, 0)


async def test_delivered_shorter_clip_is_charged_less(idle_gateway: Gateway) -> None:
    """Capture never exceeds the hold, and follows the delivered duration down."""
    key, principal = await idle_gateway.account(credit="5")
    created = await idle_gateway.client.post(
        "/v1/videos", headers=auth(key), json={"model": "kling-3-pro", "prompt": "p", "duration": 10}
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    svc = idle_gateway.services
    async with svc.db.transaction() as conn:
        for target in (JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.FETCHING):
            await job_store.transition(conn, job_id, target, now=utcnow())
    job = await svc.jobs.get(principal, job_id)
    assert await svc.lifecycle.succeed(job, None, MediaInfo("k", None, 5.0, 1280, 720, "h264", 1))
    done = await svc.jobs.get(principal, job_id)
    assert done.held_micros == 1_512_000 and done.charged_micros == 756_000
    available, held = await _ledger_consistent(idle_gateway, principal.account_id)
    assert held == 0 and available == 5_000_000 - 756_000


def test_generation_request_is_frozen() -> None:
    req = GenerationRequest(model="m", prompt="p")
    with pytest.raises(ValidationError, match="frozen"):
        req.prompt = "other"  # type: ignore[misc]
    assert req.prompt == "p"
