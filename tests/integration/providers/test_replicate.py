"""The Replicate adapter against the Replicate fake on a real port."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as StarletteRoute

from tests.integration.providers.conftest import assert_mp4, collect, make_ctx
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.providers.base import (
    CallbackRequest,
    Route,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamContentPolicy,
    UpstreamOutputExpired,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vidgate.providers.replicate import ReplicateAdapter, progress_of
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.replicate import FLAGGED, ReplicateFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-under-test")

KLING = Route("replicate", "kwaivgi/kling-v2.6")
REQ = GenerationRequest(model="kling-2.6", prompt="a cat", duration_s=5, aspect_ratio="16:9")

Calls = list[tuple[dict[str, str], bytes]]


@pytest.fixture
def fake() -> ReplicateFake:
    return ReplicateFake(script=FakeScript(latency_s=0.2))


async def run_to_end(
    adapter: ReplicateAdapter, ref: UpstreamRef, limit_s: float = 5.0
) -> list[UpstreamStatus]:
    """Poll until terminal in a bounded loop; every status seen, last one terminal."""
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + limit_s
    while not (seen and seen[-1].terminal):
        assert time.monotonic() < deadline, f"not terminal in {limit_s}s: {seen[-1:]}"
        if seen:
            await asyncio.sleep(0.03)
        seen.append(await adapter.poll(ref))
    return seen


@pytest.fixture
def receiver() -> Iterator[tuple[str, Calls]]:
    """A tiny Starlette app that records the callbacks it receives."""
    calls: Calls = []

    async def record(request: Request) -> JSONResponse:
        calls.append((dict(request.headers), await request.body()))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[StarletteRoute("/cb/replicate/{token}", record, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield url, calls


async def test_success_end_to_end(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)

    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v1/models/kwaivgi/kling-v2.6/predictions")
    assert body == {"input": {"prompt": "a cat", "duration": 5, "aspect_ratio": "16:9"}}
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"
    assert "prefer" not in fake.seen_headers[0]

    seen = await run_to_end(adapter, ref)
    assert {s.state for s in seen[:-1]} <= {"queued", "running"}
    assert seen[-1].state == "succeeded"
    assert seen[-1].raw_status == "succeeded"
    assert fake.requests[1][:2] == ("GET", f"/v1/predictions/{ref.id}")
    assert_mp4(await collect(adapter.stream_output(seen[-1].outputs[0])))


async def test_progress_from_logs(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.latency_s = 4
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    first = await adapter.poll(ref)
    assert first.state == "queued"
    assert first.raw_status == "starting"
    fake.jobs[ref.id].created -= 2  # halfway on the fake's clock
    running = await adapter.poll(ref)
    assert running.state == "running"
    assert running.progress is not None
    assert 40 <= running.progress <= 60
    assert running.eta_s is not None
    assert progress_of("x\n 42%|####   | 42/100 [00:10<01:14, 4.1it/s]") == (42, 74.0)
    assert progress_of("no bars here") == (None, None)


async def test_version_deployment_and_image_fields(
    serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake
) -> None:
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    version = "a" * 64
    await adapter.submit(REQ, Route("replicate", f"owner/model:{version}"), ATTEMPT)
    assert fake.requests[-1][1] == "/v1/predictions"
    assert fake.requests[-1][2]["version"] == f"owner/model:{version}"
    await adapter.submit(REQ, Route("replicate", "deployments/acme/my-kling"), ATTEMPT)
    assert fake.requests[-1][1] == "/v1/deployments/acme/my-kling/predictions"

    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="https://img.example/a.png"),
                ImageInput(url="https://img.example/b.png", role="last_frame"),
            ),
            "seed": 3,
            "provider_options": {"cfg_scale": 0.9},
        }
    )
    route = Route("replicate", "kwaivgi/kling-v2.1", "kwaivgi/kling-v2.1-i2v", {"mode": "pro"})
    await adapter.submit(req, route, ATTEMPT)
    _, path, body = fake.requests[-1]
    assert path == "/v1/models/kwaivgi/kling-v2.1-i2v/predictions"
    assert body["input"]["start_image"] == "https://img.example/a.png"
    assert body["input"]["end_image"] == "https://img.example/b.png"
    assert body["input"]["mode"] == "pro"
    assert body["input"]["cfg_scale"] == 0.9
    assert body["input"]["seed"] == 3


async def test_failure_reason_surfaces(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.fail_reason = "CUDA error: out of memory"
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, KLING, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert final.error.message == "CUDA error: out of memory"


async def test_moderated_prediction_is_a_content_refusal_with_its_reason(
    serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake
) -> None:
    # No structured code in the body, but Replicate's E005 wording ("flagged as
    # sensitive") is read as content policy; the message is kept as is.
    fake.script.content_policy = True
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, KLING, ATTEMPT)))[-1]
    assert isinstance(final.error, UpstreamContentPolicy)
    assert final.error.message == FLAGGED


async def test_rate_limit_then_success(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.submit_statuses = [429]
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.retry_after_s == 1.0
    assert (await adapter.submit(REQ, KLING, ATTEMPT)).id in fake.jobs


async def test_5xx_is_retryable(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.submit_statuses = [500]
    fake.script.poll_statuses = [503]
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.delay_s = 0.5
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake), timeout_s=0.1))
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, KLING, ATTEMPT)


async def test_malformed_body(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.malformed = True
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, KLING, ATTEMPT)


async def test_unknown_shape(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, KLING, ATTEMPT)
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


async def test_bad_api_key(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake), api_key="r8_wrong"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert "valid authentication token" in caught.value.message


async def test_invalid_input_keeps_the_problem_detail(
    serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake
) -> None:
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ, Route("replicate", "kwaivgi/kling", params={"prompt": 5}), ATTEMPT)
    assert caught.value.status_code == 422
    assert "prompt is required" in caught.value.message


async def test_output_expired(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    final = (await run_to_end(adapter, ref))[-1]
    fake.script.output_ttl_s = 0
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))
    # once the data is removed, a poll says so too
    removed = await adapter.poll(ref)
    assert removed.state == "failed"
    assert isinstance(removed.error, UpstreamOutputExpired)


async def test_cancel(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    fake.script.latency_s = 5
    adapter = ReplicateAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("POST", f"/v1/predictions/{ref.id}/cancel")
    status = await adapter.poll(ref)
    assert status.state == "canceled"
    assert status.raw_status == "canceled"


async def test_signed_webhooks(
    serve_fake: Any,
    http: httpx.AsyncClient,
    fake: ReplicateFake,
    receiver: tuple[str, Calls],
) -> None:
    url, calls = receiver
    base = serve_fake(fake)
    ctx = make_ctx(http, base, callback_url=f"{url}/cb/replicate/tok", webhook_secret=fake.webhook_secret)
    adapter = ReplicateAdapter(ctx)
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    sent = fake.requests[0][2]
    assert sent["webhook"] == f"{url}/cb/replicate/tok?job={ATTEMPT.job_id}"
    assert sent["webhook_events_filter"] == ["start", "completed"]

    deadline = time.monotonic() + 5
    while len(calls) < 2:
        assert time.monotonic() < deadline, "webhooks did not arrive"
        await asyncio.sleep(0.03)
    results = [adapter.parse_callback(CallbackRequest(headers=h, body=b)) for h, b in calls]
    assert all(r is not None and r.verified and r.upstream_id == ref.id for r in results)
    states = {r.status.state for r in results if r is not None and r.status is not None}
    assert states == {"queued", "succeeded"}

    headers, body = calls[-1]
    tampered = body.replace(b'"succeeded"', b'"failed"')
    assert adapter.parse_callback(CallbackRequest(headers=headers, body=tampered)) is None
    old = fake.sign(body, when=time.time() - 600)
    assert adapter.parse_callback(CallbackRequest(headers=old, body=body)) is None

    unsigned = ReplicateAdapter(make_ctx(http, base))  # no webhook_secret configured
    hint = unsigned.parse_callback(CallbackRequest(headers=headers, body=body))
    assert hint is not None
    assert not hint.verified
    assert hint.status is None
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"[1, 2]")) is None


async def test_webhook_secret_endpoint(serve_fake: Any, http: httpx.AsyncClient, fake: ReplicateFake) -> None:
    base = serve_fake(fake)
    response = await http.get(
        f"{base}/v1/webhooks/default/secret", headers={"Authorization": "Bearer test-key"}
    )
    assert response.json() == {"key": fake.webhook_secret}
    body = json.dumps({"id": "p1", "status": "failed", "error": "boom"}).encode()
    adapter = ReplicateAdapter(make_ctx(http, base, webhook_secret=response.json()["key"]))
    result = adapter.parse_callback(CallbackRequest(headers=fake.sign(body), body=body))
    assert result is not None
    assert result.status is not None
    assert isinstance(result.status.error, UpstreamRejected)
    assert result.status.error.message == "boom"


async def test_unknown_status_word_is_running() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "p1", "status": "warming"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = ReplicateAdapter(make_ctx(client, "http://replicate.test"))
        status = await adapter.poll(UpstreamRef(id="p1"))
    assert status.state == "running"
    assert status.raw_status == "warming"
