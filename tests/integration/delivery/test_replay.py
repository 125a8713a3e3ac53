"""A delivery that ran out of retries is listed as failed, and a replay sends it again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.conftest import Gateway, auth
from tests.integration.delivery.conftest import Receiver, fix_webhook_secret
from vidgate.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Retries give up after 1 s, so a dead receiver fails its deliveries quickly."""
    return settings.model_copy(update={"extra": {**settings.extra, "webhook_retry_max_age_s": "1.0"}})


async def _failed(gateway: Gateway, key: str, job_id: str) -> list[dict[str, Any]]:
    params = {"job_id": job_id, "status": "failed", "event_type": "video.completed"}
    response = await gateway.client.get("/v1/webhook_deliveries", params=params, headers=auth(key))
    return list(response.json()["data"])


async def test_failed_delivery_is_listed_and_replayable(gateway: Gateway, receiver: Receiver) -> None:
    receiver.always_fail = True
    key, principal = await gateway.account()
    secret = await fix_webhook_secret(gateway, principal)
    body = {"model": "sora-2", "prompt": "rain on a window", "seconds": "4", "webhook_url": receiver.url}
    video = (await gateway.client.post("/v1/videos", json=body, headers=auth(key))).json()
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)

    deadline = asyncio.get_running_loop().time() + 20
    while not (failed := await _failed(gateway, key, video["id"])):
        assert asyncio.get_running_loop().time() < deadline, "the delivery never gave up"
        await asyncio.sleep(0.05)
    delivery = failed[0]
    assert delivery["attempt_count"] >= 1
    assert delivery["next_attempt_at"] is None
    assert all(not a["succeeded"] and a["status_code"] == 500 for a in delivery["attempts"])
    assert delivery["last_error"] == "the receiver answered HTTP 500"
    assert not receiver.of_type("video.completed")

    receiver.always_fail = False
    replay = await gateway.client.post(f"/v1/webhook_deliveries/{delivery['id']}/replay", headers=auth(key))
    assert replay.status_code == 200, replay.text
    assert replay.json()["status"] == "pending"
    await receiver.wait_for(lambda r: bool(r.of_type("video.completed")))
    await asyncio.sleep(0.2)
    assert len(receiver.of_type("video.completed")) == 1
    sent = receiver.of_type("video.completed")[0]
    Webhook(secret).verify(sent.body, sent.headers)

    deadline = asyncio.get_running_loop().time() + 5
    while True:
        done = (
            await gateway.client.get(f"/v1/webhook_deliveries/{delivery['id']}", headers=auth(key))
        ).json()
        if done["status"] == "succeeded" or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert done["status"] == "succeeded"
    assert done["attempt_count"] == delivery["attempt_count"] + 1
    assert done["attempts"][-1]["succeeded"] is True
    assert [a["number"] for a in done["attempts"]] == list(range(1, done["attempt_count"] + 1))


async def test_replay_refuses_what_cannot_be_replayed(gateway: Gateway, receiver: Receiver) -> None:
    key, _ = await gateway.account()
    missing = await gateway.client.post("/v1/webhook_deliveries/whdel_nope/replay", headers=auth(key))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
