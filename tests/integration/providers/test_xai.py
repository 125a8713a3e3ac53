"""XaiAdapter (Grok Imagine video) against XaiFake on a real port."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

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
from vidgate.providers.xai import XaiAdapter
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.xai import XaiFake

from .conftest import assert_mp4, collect, make_ctx

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="xai", model="grok-imagine-video")
REQ = GenerationRequest(
    model="grok-imagine",
    prompt="a glowing rocket over red dunes",
    duration_s=6,
    resolution="720p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake() -> XaiFake:
    return XaiFake(script=FakeScript(latency_s=0.2))


@pytest.fixture
def base_url(fake: XaiFake, serve_fake: Any) -> str:
    url: str = serve_fake(fake)
    return url


@pytest.fixture
def adapter(http: httpx.AsyncClient, base_url: str) -> XaiAdapter:
    return XaiAdapter(make_ctx(http, base_url))


async def wait_terminal(adapter: XaiAdapter, ref: UpstreamRef) -> list[UpstreamStatus]:
    seen: list[UpstreamStatus] = []
    for _ in range(200):
        status = await adapter.poll(ref)
        seen.append(status)
        if status.terminal:
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"never terminal: {seen[-1]}")


async def test_text_to_video_end_to_end(adapter: XaiAdapter, fake: XaiFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.request_id == ref.id
    seen = await wait_terminal(adapter, ref)
    final = seen[-1]
    assert final.state == "succeeded"
    assert final.raw_status == "done"
    assert [s.raw_status for s in seen[:-1]] == ["pending"] * (len(seen) - 1)
    assert len(seen) > 1
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))

    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v1/videos/generations")
    assert body == {
        "model": "grok-imagine-video",
        "prompt": "a glowing rocket over red dunes",
        "user": ATTEMPT.job_id,
        "duration": 6,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"
    assert fake.requests[1][:2] == ("GET", f"/v1/videos/{ref.id}")


async def test_grok_imagine_1_5_takes_1080p_and_the_first_model_does_not(
    adapter: XaiAdapter, fake: XaiFake
) -> None:
    req = REQ.model_copy(update={"resolution": "1080p"})
    ref = await adapter.submit(req, Route("xai", "grok-imagine-video-1.5"), ATTEMPT)
    assert fake.requests[0][2]["model"] == "grok-imagine-video-1.5"
    assert fake.requests[0][2]["resolution"] == "1080p"
    assert (await wait_terminal(adapter, ref))[-1].state == "succeeded"
    with pytest.raises(UpstreamRejected):
        await adapter.submit(req, ROUTE, SubmitAttempt.first("another-job"))


async def test_image_to_video_sends_an_image_object(adapter: XaiAdapter, fake: XaiFake) -> None:
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="data:image/png;base64,AAAA"),
                ImageInput(url="https://img.example/ref.png", role="reference"),
            )
        }
    )
    ref = await adapter.submit(
        req, Route(provider="xai", model="x", image_model="grok-imagine-video"), ATTEMPT
    )
    body = fake.requests[-1][2]
    assert body["model"] == "grok-imagine-video"
    assert body["image"] == {"url": "data:image/png;base64,AAAA"}
    assert "reference_images" not in body
    assert (await wait_terminal(adapter, ref))[-1].state == "succeeded"


async def test_reference_images(adapter: XaiAdapter, fake: XaiFake) -> None:
    req = REQ.model_copy(update={"images": (ImageInput(url="https://img.example/r1.png", role="reference"),)})
    await adapter.submit(req, ROUTE, ATTEMPT)
    assert fake.requests[-1][2]["reference_images"] == [{"url": "https://img.example/r1.png"}]


async def test_base_url_with_v1(http: httpx.AsyncClient, base_url: str) -> None:
    adapter = XaiAdapter(make_ctx(http, base_url + "/v1"))
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_failure_reason_surfaces(adapter: XaiAdapter, fake: XaiFake) -> None:
    fake.script.fail_reason = "Video generation failed unexpectedly."
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert final.raw_status == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert final.error.message == "internal_error: Video generation failed unexpectedly."


async def test_moderated_video_is_content_policy(adapter: XaiAdapter, fake: XaiFake) -> None:
    fake.script.content_policy = True
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert final.outputs == ()
    assert isinstance(final.error, UpstreamContentPolicy)


async def test_rate_limit_then_success(adapter: XaiAdapter, fake: XaiFake) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.retry_after_s == 1.0
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_error_is_retryable(adapter: XaiAdapter, fake: XaiFake) -> None:
    fake.script.submit_statuses = [500]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [503]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(http: httpx.AsyncClient, base_url: str, fake: XaiFake) -> None:
    adapter = XaiAdapter(make_ctx(http, base_url, timeout_s=0.2))
    fake.script.delay_s = 0.5
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_body(adapter: XaiAdapter, fake: XaiFake) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_shape(adapter: XaiAdapter, fake: XaiFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_status_word_is_running(adapter: XaiAdapter, fake: XaiFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_status = "rendering"
    status = await adapter.poll(ref)
    assert status.state == "running"
    assert status.raw_status == "rendering"


async def test_expired_request(adapter: XaiAdapter, fake: XaiFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_status = "expired"
    status = await adapter.poll(ref)
    assert status.state == "failed"
    assert isinstance(status.error, UpstreamOutputExpired)


async def test_bad_api_key_answered_400_is_an_auth_error(http: httpx.AsyncClient, base_url: str) -> None:
    adapter = XaiAdapter(make_ctx(http, base_url, api_key="wrong-key"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.status_code == 400
    assert "Incorrect API key" in caught.value.message
    with pytest.raises(UpstreamAuthError):
        await XaiAdapter(make_ctx(http, base_url, api_key=None)).submit(REQ, ROUTE, ATTEMPT)


async def test_bad_input_is_rejected_with_reason(adapter: XaiAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"duration_s": 20}), ROUTE, ATTEMPT)
    assert "duration" in caught.value.message


async def test_no_cancel_and_no_callbacks(adapter: XaiAdapter, fake: XaiFake) -> None:
    assert Capability.CANCEL not in adapter.capabilities
    assert Capability.CALLBACK not in adapter.capabilities
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    calls = len(fake.requests)
    with pytest.raises(UpstreamRejected, match="cannot cancel"):  # the shared default
        await adapter.cancel(ref)
    assert len(fake.requests) == calls  # nothing was sent
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b'{"status":"done"}')) is None


async def test_output_expired_before_fetch(adapter: XaiAdapter, fake: XaiFake) -> None:
    fake.script.output_ttl_s = 0
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))
