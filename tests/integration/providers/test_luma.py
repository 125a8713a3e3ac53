"""LumaAdapter against LumaFake on a real port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.providers.base import (
    CallbackRequest,
    Capability,
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
from vidgate.providers.luma import LumaAdapter
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.luma import LumaFake
from vidgate.testing.server import serve_in_thread

from .conftest import assert_mp4, collect, make_ctx

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="luma", model="ray-2", image_model="ray-flash-2")
REQ = GenerationRequest(
    model="luma-ray-2",
    prompt="a paper boat on a river",
    duration_s=5,
    resolution="720p",
    aspect_ratio="16:9",
)
PREFIX = "/dream-machine/v1"


@pytest.fixture
def fake() -> LumaFake:
    return LumaFake(script=FakeScript(latency_s=0.2))


@pytest.fixture
def base_url(fake: LumaFake, serve_fake: Any) -> str:
    url: str = serve_fake(fake)
    return url


@pytest.fixture
def adapter(http: httpx.AsyncClient, base_url: str) -> LumaAdapter:
    return LumaAdapter(make_ctx(http, base_url))


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[CallbackRequest]]]:
    """A small callback receiver on a real port: (URL to register, calls received)."""
    calls: list[CallbackRequest] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        calls.append(CallbackRequest(dict(request.headers), body, dict(request.query_params)))
        return Response(status_code=200)

    app = Starlette(routes=[HttpRoute("/cb/luma/{token}", hook, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield f"{url}/cb/luma/tok-123", calls


async def wait_terminal(adapter: LumaAdapter, ref: UpstreamRef) -> list[UpstreamStatus]:
    seen: list[UpstreamStatus] = []
    for _ in range(200):
        status = await adapter.poll(ref)
        seen.append(status)
        if status.terminal:
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"never terminal: {seen[-1]}")


async def test_text_to_video_end_to_end(adapter: LumaAdapter, fake: LumaFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    seen = await wait_terminal(adapter, ref)
    final = seen[-1]
    assert final.state == "succeeded"
    assert final.raw_status == "completed"
    assert {s.raw_status for s in seen} <= {"queued", "dreaming", "completed"}
    assert "dreaming" in {s.raw_status for s in seen}
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))

    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", f"{PREFIX}/generations/video")  # the lumaai SDK's create
    assert body == {
        "model": "ray-2",
        "prompt": "a paper boat on a river",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": "5s",
    }
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"


async def test_keyframes_and_image_model(adapter: LumaAdapter, fake: LumaFake) -> None:
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="https://img.example/a.jpg", role="first_frame"),
                ImageInput(url="https://img.example/b.jpg", role="last_frame"),
            ),
            "provider_options": {"loop": True},
        }
    )
    await adapter.submit(req, ROUTE, ATTEMPT)
    body = fake.requests[-1][2]
    assert body["model"] == "ray-flash-2"
    assert body["keyframes"] == {
        "frame0": {"type": "image", "url": "https://img.example/a.jpg"},
        "frame1": {"type": "image", "url": "https://img.example/b.jpg"},
    }
    assert body["loop"] is True


async def test_base_url_may_already_hold_the_prefix(
    http: httpx.AsyncClient, base_url: str, fake: LumaFake
) -> None:
    adapter = LumaAdapter(make_ctx(http, base_url + PREFIX))
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert (await adapter.poll(ref)).state in ("queued", "running", "succeeded")


async def test_failure_reason_surfaces(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.fail_reason = "400: failed to moderate image"
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert not isinstance(final.error, UpstreamContentPolicy)
    assert final.error.message == "400: failed to moderate image"


async def test_moderation_failure_is_content_policy(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.content_policy = True
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamContentPolicy)
    assert "moderation" in final.error.message


async def test_rate_limit_then_success(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_error_is_retryable(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.submit_statuses = [500]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [503]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_out_of_credits_is_an_operator_problem(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.submit_statuses = [402]
    with pytest.raises(UpstreamAuthError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_timeout(http: httpx.AsyncClient, base_url: str, fake: LumaFake) -> None:
    adapter = LumaAdapter(make_ctx(http, base_url, timeout_s=0.2))
    fake.script.delay_s = 0.5
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_body(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_shape(adapter: LumaAdapter, fake: LumaFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_state_word_is_running(adapter: LumaAdapter, fake: LumaFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_state = "upscaling"
    status = await adapter.poll(ref)
    assert status.state == "running"
    assert status.raw_status == "upscaling"


async def test_bad_api_key(http: httpx.AsyncClient, base_url: str) -> None:
    adapter = LumaAdapter(make_ctx(http, base_url, api_key="wrong"))
    with pytest.raises(UpstreamAuthError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_bad_input_is_rejected_with_reason(adapter: LumaAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"aspect_ratio": "5:4"}), ROUTE, ATTEMPT)
    assert "aspect_ratio" in caught.value.message


async def test_cancel_deletes_the_generation(adapter: LumaAdapter, fake: LumaFake) -> None:
    assert Capability.CANCEL in adapter.capabilities
    fake.script.latency_s = 30
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("DELETE", f"{PREFIX}/generations/{ref.id}")
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.poll(ref)
    assert caught.value.status_code == 404


async def test_callback_is_an_unverified_hint(
    http: httpx.AsyncClient,
    base_url: str,
    fake: LumaFake,
    receiver: tuple[str, list[CallbackRequest]],
) -> None:
    url, calls = receiver
    adapter = LumaAdapter(make_ctx(http, base_url, callback_url=url))
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert fake.requests[-1][2]["callback_url"] == f"{url}?job={ATTEMPT.job_id}"
    for _ in range(200):
        if any(json.loads(c.body)["state"] == "completed" for c in calls):
            break
        await asyncio.sleep(0.02)
    states = [json.loads(c.body)["state"] for c in calls]
    assert states[-1] == "completed"
    for call in calls:
        result = adapter.parse_callback(call)
        assert result is not None
        assert result.upstream_id == ref.id
        assert result.verified is False
        assert result.status is None
    # The body is never trusted: a forged "completed" is still only a hint.
    forged = json.dumps({"id": ref.id, "state": "completed", "assets": {"video": "https://x"}})
    forged_result = adapter.parse_callback(CallbackRequest(headers={}, body=forged.encode()))
    assert forged_result is not None
    assert forged_result.status is None
    # Bodies that are not a Generation object are not ours.
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"not json")) is None
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b'{"event":"x"}')) is None


async def test_output_expired_before_fetch(adapter: LumaAdapter, fake: LumaFake) -> None:
    fake.script.output_ttl_s = 0
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))
