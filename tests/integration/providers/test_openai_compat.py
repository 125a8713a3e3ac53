"""The OpenAI-compatible Videos adapter against the OpenAI fake on a real port."""

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
from vidgate.providers.openai_compat import OpenAICompatAdapter, size_for
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.openai_compat import OpenAICompatFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-under-test")

SORA = Route("openai", "sora-2")
REQ = GenerationRequest(model="sora-2", prompt="a cat", duration_s=8, resolution="720p", aspect_ratio="16:9")

Calls = list[tuple[dict[str, str], bytes]]


@pytest.fixture
def fake() -> OpenAICompatFake:
    return OpenAICompatFake(script=FakeScript(latency_s=0.2))


async def run_to_end(
    adapter: OpenAICompatAdapter, ref: UpstreamRef, limit_s: float = 5.0
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
    calls: Calls = []

    async def record(request: Request) -> JSONResponse:
        calls.append((dict(request.headers), await request.body()))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[StarletteRoute("/cb/openai", record, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield url, calls


async def test_success_end_to_end(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    assert ref.id.startswith("video_")
    assert fake.requests[0][:2] == ("POST", "/v1/videos")
    assert fake.create_bodies[0] == {
        "prompt": "a cat",
        "model": "sora-2",
        "seconds": "8",
        "size": "1280x720",
    }
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"

    seen = await run_to_end(adapter, ref)
    assert {s.state for s in seen[:-1]} <= {"queued", "running"}
    final = seen[-1]
    assert final.state == "succeeded"
    assert final.raw_status == "completed"
    output = final.outputs[0]
    assert output.url.endswith(f"/v1/videos/{ref.id}/content?variant=video")
    assert output.headers["Authorization"] == "Bearer test-key"
    assert_mp4(await collect(adapter.stream_output(output)))
    assert fake.seen_headers[-1]["authorization"] == "Bearer test-key"  # download is authed


async def test_base_url_with_v1_and_progress(
    serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake
) -> None:
    fake.script.latency_s = 4
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake) + "/v1"))
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    assert (await adapter.poll(ref)).state == "queued"
    fake.jobs[ref.id].created -= 2
    running = await adapter.poll(ref)
    assert running.state == "running"
    assert running.progress is not None
    assert 40 <= running.progress <= 60


async def test_image_reference_and_options(
    serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake
) -> None:
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake), organization="org-1"))
    req = REQ.model_copy(
        update={
            "images": (ImageInput(url="data:image/png;base64,iVBORw0KGgo="),),
            "aspect_ratio": "9:16",
            "resolution": "1080p",
            "provider_options": {"seconds": "12", "user": "u-1"},
        }
    )
    await adapter.submit(req, Route("openai", "sora-2", "sora-2-pro"), ATTEMPT)
    body = fake.create_bodies[0]
    assert body["model"] == "sora-2-pro"
    assert body["input_reference"] == {"image_url": "data:image/png;base64,iVBORw0KGgo="}
    assert body["size"] == "1080x1920"
    assert body["seconds"] == "8" and body["user"] == "u-1"  # pass-through adds, never overrides
    assert fake.seen_headers[0]["openai-organization"] == "org-1"
    assert size_for(None, None) is None
    assert size_for("1792x1024", None) == "1792x1024"
    with pytest.raises(UpstreamRejected):
        size_for("720p", "1:1")


async def test_fake_accepts_multipart_like_the_sdk(
    serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake
) -> None:
    base = serve_fake(fake)
    response = await http.post(
        f"{base}/v1/videos",
        data={"prompt": "p", "model": "sora-2", "seconds": "4", "size": "720x1280"},
        files={"input_reference": ("ref.png", b"\x89PNG", "image/png")},
        headers={"Authorization": "Bearer test-key"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert fake.create_bodies[0]["input_reference"] == {"file": "ref.png"}


async def test_failure_reason_surfaces(
    serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake
) -> None:
    fake.script.fail_reason = "The render node crashed"
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, SORA, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert "The render node crashed" in final.error.message


async def test_content_policy(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    fake.script.content_policy = True
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamContentPolicy) as caught:
        await adapter.submit(REQ, SORA, ATTEMPT)
    assert "moderation" in caught.value.message


async def test_invalid_seconds_is_rejected(
    serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake
) -> None:
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"duration_s": 5}), SORA, ATTEMPT)
    assert caught.value.status_code == 400
    assert "Supported values" in caught.value.message


async def test_rate_limit_then_success(
    serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake
) -> None:
    fake.script.submit_statuses = [429]
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, SORA, ATTEMPT)
    assert caught.value.retryable
    assert (await adapter.submit(REQ, SORA, ATTEMPT)).id in fake.jobs


async def test_5xx_is_retryable(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    fake.script.submit_statuses = [502]
    fake.script.poll_statuses = [500]
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, SORA, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    fake.script.delay_s = 0.5
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake), timeout_s=0.1))
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, SORA, ATTEMPT)


async def test_malformed_body(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    fake.script.malformed = True
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, SORA, ATTEMPT)


async def test_unknown_shape(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, SORA, ATTEMPT)
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


async def test_bad_api_key(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake), api_key="sk-wrong"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, SORA, ATTEMPT)
    assert "Incorrect API key" in caught.value.message


async def test_output_expired(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    final = (await run_to_end(adapter, ref))[-1]
    fake.script.output_ttl_s = 0
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))
    expired = await adapter.poll(ref)  # expires_at is in the past now
    assert expired.state == "failed"
    assert isinstance(expired.error, UpstreamOutputExpired)


async def test_cancel_deletes(serve_fake: Any, http: httpx.AsyncClient, fake: OpenAICompatFake) -> None:
    fake.script.latency_s = 5
    adapter = OpenAICompatAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("DELETE", f"/v1/videos/{ref.id}")
    await adapter.cancel(ref)  # a second delete (404) is a no-op
    with pytest.raises(UpstreamRejected):
        await adapter.poll(ref)


async def test_project_webhook(
    serve_fake: Any,
    http: httpx.AsyncClient,
    fake: OpenAICompatFake,
    receiver: tuple[str, Calls],
) -> None:
    url, calls = receiver
    fake.webhook_url = f"{url}/cb/openai"
    ctx = make_ctx(http, serve_fake(fake), webhook_secret=fake.webhook_secret)
    adapter = OpenAICompatAdapter(ctx)
    ref = await adapter.submit(REQ, SORA, ATTEMPT)
    deadline = time.monotonic() + 5
    while not calls:
        assert time.monotonic() < deadline, "no webhook arrived"
        await asyncio.sleep(0.03)
    headers, body = calls[0]
    assert json.loads(body)["type"] == "video.completed"
    result = adapter.parse_callback(CallbackRequest(headers=headers, body=body))
    assert result is not None
    assert result.verified
    assert result.upstream_id == ref.id
    assert result.status is None  # the event only says "poll now"

    tampered = body.replace(ref.id.encode(), b"video_other")
    assert adapter.parse_callback(CallbackRequest(headers=headers, body=tampered)) is None
    hint = OpenAICompatAdapter(make_ctx(http, fake.base_url)).parse_callback(
        CallbackRequest(headers=headers, body=body)
    )
    assert hint is not None
    assert not hint.verified
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b'{"type": "x"}')) is None


async def test_unknown_status_word_is_running() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "video_1", "status": "rendering", "progress": 5})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = OpenAICompatAdapter(make_ctx(client, "http://openai.test"))
        status = await adapter.poll(UpstreamRef(id="video_1"))
    assert status.state == "running"
    assert status.raw_status == "rendering"
