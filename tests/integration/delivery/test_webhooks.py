"""Webhooks end to end: a real app, its in-process worker and sender, a real receiver."""

from __future__ import annotations

import asyncio
from typing import Any

from standardwebhooks import Webhook

from tests.conftest import Gateway, auth
from tests.integration.delivery.conftest import Receiver, fix_webhook_secret
from vidgate.store.events import events_of_job


async def _create(gateway: Gateway, key: str, **fields: Any) -> dict[str, Any]:
    body = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4", **fields}
    response = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _deliveries(gateway: Gateway, key: str, **params: str) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/webhook_deliveries", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_job_webhook_is_signed_and_carries_the_native_object(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, principal = await gateway.account()
    secret = await fix_webhook_secret(gateway, principal)
    video = await _create(gateway, key, webhook_url=receiver.url)
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    await receiver.wait_for(lambda r: bool(r.of_type("video.completed")))

    verifier = Webhook(secret)
    for request in receiver.requests:  # every single request, not only the last
        payload = verifier.verify(request.body, request.headers)
        assert set(payload) == {"type", "timestamp", "data"}
        assert payload["data"]["id"] == video["id"]
        assert request.headers["content-type"] == "application/json"
    types = [r.json["type"] for r in receiver.delivered()]
    assert types[0] == "video.queued"
    assert types.count("video.completed") == 1
    completed = receiver.of_type("video.completed")[0].json
    assert completed["data"]["status"] == "completed"
    assert completed["data"]["video_url"].startswith("http")
    queued = receiver.of_type("video.queued")[0].json
    assert queued["data"]["status"] == "queued"  # the job as it stood at the event

    async with gateway.services.db.read() as conn:
        events = await events_of_job(conn, video["id"])
    ids = {r.headers["webhook-id"] for r in receiver.delivered()}
    assert ids == {e.public_id for e in events}


async def test_receiver_failing_three_times_gets_each_event_on_the_fourth_exactly_once(
    gateway: Gateway, receiver: Receiver
) -> None:
    receiver.fail_first = 3
    key, principal = await gateway.account()
    secret = await fix_webhook_secret(gateway, principal)
    video = await _create(gateway, key, webhook_url=receiver.url)
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    async with gateway.services.db.read() as conn:
        events = await events_of_job(conn, video["id"])

    def all_delivered(r: Receiver) -> bool:
        return all(200 in r.answers.get(e.public_id, []) for e in events)

    await receiver.wait_for(all_delivered)
    await asyncio.sleep(0.5)  # any stray duplicate would arrive within several retry delays

    verifier = Webhook(secret)
    for request in receiver.requests:
        verifier.verify(request.body, request.headers)
    for event in events:
        assert receiver.answers[event.public_id] == [500, 500, 500, 200], event.type

    deliveries = await _deliveries(gateway, key, job_id=video["id"])
    assert {d["event_id"] for d in deliveries} == {e.public_id for e in events}
    for delivery in deliveries:
        assert delivery["status"] == "succeeded"
        assert delivery["attempt_count"] == 4
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 200]
        assert [a["number"] for a in delivery["attempts"]] == [1, 2, 3, 4]
        assert delivery["attempts"][0]["response_body"] == "boom"
    completed = await _deliveries(gateway, key, event_type="video.completed")
    assert len(completed) == 1
    by_event = await _deliveries(gateway, key, event_id=completed[0]["event_id"])
    assert [d["id"] for d in by_event] == [completed[0]["id"]]


async def test_webhook_events_filter_limits_what_a_job_sends(gateway: Gateway, receiver: Receiver) -> None:
    from vidgate.domain.request import GenerationRequest

    _, principal = await gateway.account()
    await fix_webhook_secret(gateway, principal)
    req = GenerationRequest(
        model="sora-2", prompt="waves", duration_s=4, webhook_url=receiver.url, webhook_events=("completed",)
    )
    submitted = await gateway.services.jobs.submit(principal, req, dialect="native")
    await receiver.wait_for(lambda r: bool(r.of_type("video.completed")))
    await asyncio.sleep(0.3)
    assert [r.json["type"] for r in receiver.delivered()] == ["video.completed"]
    assert receiver.delivered()[0].json["data"]["id"] == submitted.job.id
