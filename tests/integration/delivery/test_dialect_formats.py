"""A dialect's own webhook format and handshake ride on the same outbox (a fake dialect here)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Gateway
from tests.integration.delivery.conftest import Receiver
from vidgate.domain.job import Job
from vidgate.domain.request import GenerationRequest
from vidgate.webhooks.formats import DialectHooks, WebhookFormat

NAME = "fakedialect"


def _render(
    job: Job, event_type: str, links: Any, key_secret_hash: str
) -> tuple[bytes, dict[str, str]] | None:
    """Apiframe-like: only completed/failed, HMAC keyed by the API key's SHA-256 digest."""
    if event_type not in ("video.completed", "video.failed"):
        return None
    body = json.dumps(
        {
            "event": event_type.removeprefix("video."),
            "jobId": job.id,
            "status": job.status.value,
            "videoUrl": links.url(job, "video"),
        }
    ).encode()
    digest = hmac.new(bytes.fromhex(key_secret_hash), body, hashlib.sha256).hexdigest()
    return body, {"X-Webhook-Signature": f"sha256={digest}", "X-Event-Id": f"{job.id}:{event_type}"}


def _handshake(url: str) -> tuple[bytes, Callable[[bytes], bool]]:
    challenge = "c-" + url[-6:]
    body = json.dumps({"challenge": challenge}).encode()
    return body, lambda answer: json.loads(answer).get("challenge") == challenge


@pytest.fixture
def fake_dialect(gateway: Gateway) -> DialectHooks:
    """A dialect with its own webhook format, registered with the running sender."""
    hooks = gateway.runtime.sender.hooks
    hooks.formats[NAME] = WebhookFormat(_render)
    return hooks


async def _submit(gateway: Gateway, principal: Any, url: str) -> Job:
    req = GenerationRequest(model="sora-2", prompt="a kite", duration_s=4, webhook_url=url)
    return (await gateway.services.jobs.submit(principal, req, dialect=NAME)).job


async def test_dialect_renderer_replaces_the_standard_format(
    gateway: Gateway, receiver: Receiver, fake_dialect: DialectHooks
) -> None:
    key, principal = await gateway.account()
    job = await _submit(gateway, principal, receiver.url)
    await receiver.wait_for(lambda r: len(r.delivered()) >= 1)
    await asyncio.sleep(0.3)
    [sent] = receiver.delivered()  # queued and progress are "not subscribed" in this format
    assert sent.json["event"] == "completed"
    assert sent.json["jobId"] == job.id
    assert "webhook-signature" not in sent.headers
    expected = hmac.new(hashlib.sha256(key.encode()).digest(), sent.body, hashlib.sha256)
    assert sent.headers["x-webhook-signature"] == f"sha256={expected.hexdigest()}"


async def test_handshake_runs_once_before_the_first_push(
    gateway: Gateway, receiver: Receiver, fake_dialect: DialectHooks
) -> None:
    fake_dialect.formats[NAME] = WebhookFormat(_render, _handshake)
    _, principal = await gateway.account()
    await _submit(gateway, principal, receiver.url)
    await receiver.wait_for(lambda r: len(r.delivered()) >= 1)
    await asyncio.sleep(0.3)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert "challenge" in bodies[0]
    assert sum("challenge" in b for b in bodies) == 1
    assert bodies[1]["event"] == "completed"


async def test_failed_handshake_means_no_pushes(
    gateway: Gateway, receiver: Receiver, fake_dialect: DialectHooks
) -> None:
    fake_dialect.formats[NAME] = WebhookFormat(_render, _handshake)
    receiver.echo_challenge = False
    key, principal = await gateway.account()
    job = await _submit(gateway, principal, receiver.url)
    await gateway.wait_terminal(f"/v1/videos/{job.id}", key)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        response = await gateway.client.get(
            "/v1/webhook_deliveries", params={"job_id": job.id}, headers={"Authorization": f"Bearer {key}"}
        )
        found = response.json()["data"]
        if (found and found[0]["status"] != "pending") or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert [json.loads(r.body).get("challenge") is not None for r in receiver.requests] == [True]
    [delivery] = found
    assert delivery["status"] == "skipped"
    assert delivery["format"] == NAME
    assert "handshake" in delivery["last_error"]
