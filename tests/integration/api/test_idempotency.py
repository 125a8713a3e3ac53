"""Idempotency-Key on the native create: one job and one hold, however many arrive at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from tests.conftest import Gateway, auth
from vidgate.clock import utcnow
from vidgate.store import ledger as ledger_store
from vidgate.store.tables import jobs

BODY = {"model": "sora-2", "prompt": "same", "seconds": "4"}


async def test_hundred_concurrent_identical_submits_make_one_job_and_one_hold(idle_gateway: Gateway) -> None:
    key, principal = await idle_gateway.account(credit="10")
    headers = {**auth(key), "Idempotency-Key": "order-42"}

    async def submit() -> tuple[int, str]:
        response = await idle_gateway.client.post("/v1/videos", headers=headers, json=BODY)
        return response.status_code, response.json()["id"]

    results = await asyncio.gather(*(submit() for _ in range(100)))
    assert {status for status, _ in results} == {200}
    assert len({job_id for _, job_id in results}) == 1
    async with idle_gateway.services.db.read() as conn:
        entries = await ledger_store.entries(conn, principal.account_id, "test", limit=500)
        balance = await ledger_store.balance(conn, principal.account_id, "test")
    assert [e.kind for e in entries].count("hold") == 1
    assert balance.held_micros == 40_000


async def test_same_key_different_body_is_409_and_changes_nothing(idle_gateway: Gateway) -> None:
    key, _ = await idle_gateway.account(credit="10")
    headers = {**auth(key), "Idempotency-Key": "k"}
    first = await idle_gateway.client.post("/v1/videos", headers=headers, json=BODY)
    replay = await idle_gateway.client.post("/v1/videos", headers=headers, json=BODY)
    assert replay.json()["id"] == first.json()["id"] and replay.headers["idempotent-replayed"] == "true"
    other = await idle_gateway.client.post(
        "/v1/videos", headers=headers, json={**BODY, "prompt": "different"}
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len((await idle_gateway.client.get("/v1/videos", headers=auth(key))).json()["data"]) == 1


async def test_keys_are_per_account_and_lapse_after_24_hours(idle_gateway: Gateway) -> None:
    key_a, _ = await idle_gateway.account("a", credit="10")
    key_b, _ = await idle_gateway.account("b", credit="10")
    a = (
        await idle_gateway.client.post(
            "/v1/videos", headers={**auth(key_a), "Idempotency-Key": "k"}, json=BODY
        )
    ).json()
    b = (
        await idle_gateway.client.post(
            "/v1/videos", headers={**auth(key_b), "Idempotency-Key": "k"}, json=BODY
        )
    ).json()
    assert a["id"] != b["id"]
    async with idle_gateway.services.db.transaction() as conn:  # a day passes
        await conn.execute(
            update(jobs).where(jobs.c.id == a["id"]).values(created_at=utcnow() - timedelta(hours=25))
        )
    again = (
        await idle_gateway.client.post(
            "/v1/videos", headers={**auth(key_a), "Idempotency-Key": "k"}, json=BODY
        )
    ).json()
    assert again["id"] != a["id"]
