"""Account webhook endpoints: create (with their own secret), list, delete, and what they receive."""

from __future__ import annotations

import asyncio
from typing import Any

from standardwebhooks import Webhook

from tests.conftest import Gateway, auth
from tests.integration.delivery.conftest import Receiver


async def _video(gateway: Gateway, key: str) -> dict[str, Any]:
    body = {"model": "sora-2", "prompt": "a paper boat", "seconds": "4"}
    response = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    video = dict(response.json())
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    return video


async def test_endpoint_crud_and_delivery(gateway: Gateway, receiver: Receiver) -> None:
    key, _ = await gateway.account()
    created = await gateway.client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "events": ["video.completed", "video.failed"], "description": "ci"},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    endpoint = created.json()
    assert endpoint["object"] == "webhook_endpoint"
    assert endpoint["id"].startswith("we_")
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["events"] == ["video.completed", "video.failed"]
    assert endpoint["mode"] == "test"

    listed = (await gateway.client.get("/v1/webhook_endpoints", headers=auth(key))).json()
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]]

    video = await _video(gateway, key)
    await receiver.wait_for(lambda r: bool(r.of_type("video.completed")))
    await asyncio.sleep(0.3)
    assert [r.json["type"] for r in receiver.delivered()] == ["video.completed"]  # subscribed types only
    sent = receiver.delivered()[0]
    payload = Webhook(endpoint["secret"]).verify(sent.body, sent.headers)
    assert payload["data"]["id"] == video["id"]

    deliveries = (
        await gateway.client.get(
            "/v1/webhook_deliveries", params={"endpoint_id": endpoint["id"]}, headers=auth(key)
        )
    ).json()["data"]
    assert len(deliveries) == 1
    assert deliveries[0]["destination"] == "endpoint"
    assert deliveries[0]["status"] == "succeeded"

    deleted = await gateway.client.delete(f"/v1/webhook_endpoints/{endpoint['id']}", headers=auth(key))
    assert deleted.status_code == 200
    assert deleted.json() == {"id": endpoint["id"], "object": "webhook_endpoint.deleted", "deleted": True}
    assert (await gateway.client.get("/v1/webhook_endpoints", headers=auth(key))).json()["data"] == []
    again = await gateway.client.delete(f"/v1/webhook_endpoints/{endpoint['id']}", headers=auth(key))
    assert again.status_code == 404

    await _video(gateway, key)
    await asyncio.sleep(0.4)
    assert len(receiver.delivered()) == 1  # nothing more once deleted


async def test_endpoints_are_private_to_their_account_and_mode(gateway: Gateway, receiver: Receiver) -> None:
    key, _ = await gateway.account("first")
    other, _ = await gateway.account("second")
    endpoint = (
        await gateway.client.post("/v1/webhook_endpoints", json={"url": receiver.url}, headers=auth(key))
    ).json()
    assert endpoint["events"] == ["*"]
    assert (await gateway.client.get("/v1/webhook_endpoints", headers=auth(other))).json()["data"] == []
    refused = await gateway.client.delete(f"/v1/webhook_endpoints/{endpoint['id']}", headers=auth(other))
    assert refused.status_code == 404

    await _video(gateway, other)  # another account's job: this endpoint hears nothing
    await asyncio.sleep(0.3)
    assert receiver.requests == []


async def test_endpoint_validation(gateway: Gateway) -> None:
    key, _ = await gateway.account()

    async def create(**body: Any) -> Any:
        return await gateway.client.post("/v1/webhook_endpoints", json=body, headers=auth(key))

    unknown = await create(url="https://example.com/hook", events=["video.exploded"])
    assert unknown.status_code == 400
    assert unknown.json()["error"]["param"] == "events"
    empty = await create(url="https://example.com/hook", events=[])
    assert empty.status_code == 400
    for url in ("http://10.0.0.1/hook", "ftp://example.com/hook", "http://169.254.169.254/latest"):
        refused = await create(url=url)
        assert refused.status_code == 400, url
        assert refused.json()["error"]["param"] == "url"
    anonymous = await gateway.client.get("/v1/webhook_endpoints")
    assert anonymous.status_code == 401
