"""RunwayAdapter against RunwayFake on a real port."""

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
from vidgate.providers.runway import RunwayAdapter, runway_ratio
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.runway import RunwayFake

from .conftest import assert_mp4, collect, make_ctx

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="runway", model="gen4.5", image_model="gen4_turbo")
REQ = GenerationRequest(
    model="runway-gen4.5", prompt="a red fox in snow", duration_s=5, aspect_ratio="16:9", seed=7
)


@pytest.fixture
def fake() -> RunwayFake:
    return RunwayFake(script=FakeScript(latency_s=0.2))


@pytest.fixture
def base_url(fake: RunwayFake, serve_fake: Any) -> str:
    url: str = serve_fake(fake)
    return url


@pytest.fixture
def adapter(http: httpx.AsyncClient, base_url: str) -> RunwayAdapter:
    return RunwayAdapter(make_ctx(http, base_url))


async def wait_terminal(adapter: RunwayAdapter, ref: UpstreamRef) -> list[UpstreamStatus]:
    seen: list[UpstreamStatus] = []
    for _ in range(200):
        status = await adapter.poll(ref)
        seen.append(status)
        if status.terminal:
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"never terminal: {seen[-1]}")


async def test_text_to_video_end_to_end(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    seen = await wait_terminal(adapter, ref)
    final = seen[-1]
    assert final.state == "succeeded"
    assert final.raw_status == "SUCCEEDED"
    assert {s.raw_status for s in seen} <= {"THROTTLED", "PENDING", "RUNNING", "SUCCEEDED"}
    running = [s.progress for s in seen if s.state == "running"]
    assert running
    assert all(p is not None and 0 <= p <= 100 for p in running)
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))

    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v1/text_to_video")
    assert body == {
        "model": "gen4.5",
        "promptText": "a red fox in snow",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 7,
    }
    headers = fake.seen_headers[0]
    assert headers["authorization"] == "Bearer test-key"
    assert headers["x-runway-version"] == "2024-11-06"


async def test_image_to_video_uses_image_model_and_prompt_image(
    adapter: RunwayAdapter, fake: RunwayFake
) -> None:
    req = REQ.model_copy(
        update={
            "images": (ImageInput(url="https://img.example/first.png"),),
            "provider_options": {"contentModeration": {"publicFigureThreshold": "low"}},
        }
    )
    await adapter.submit(req, ROUTE, ATTEMPT)
    _method, path, body = fake.requests[-1]
    assert path == "/v1/image_to_video"
    assert body["model"] == "gen4_turbo"
    assert body["promptImage"] == "https://img.example/first.png"
    assert body["contentModeration"] == {"publicFigureThreshold": "low"}


async def test_first_and_last_frame_use_the_position_array(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="https://img.example/a.png", role="first_frame"),
                ImageInput(url="https://img.example/b.png", role="last_frame"),
            ),
            "audio": True,
            "negative_prompt": "blur",
            "duration_s": 8,
        }
    )
    await adapter.submit(req, Route(provider="runway", model="veo3.1"), ATTEMPT)
    body = fake.requests[-1][2]
    assert body["promptImage"] == [
        {"uri": "https://img.example/a.png", "position": "first"},
        {"uri": "https://img.example/b.png", "position": "last"},
    ]
    assert body["audio"] is True
    assert body["negativePrompt"] == "blur"


def test_ratio_mapping() -> None:
    assert runway_ratio("9:16", "1080p") == "1080:1920"
    assert runway_ratio("9:16", "720p") == "720:1280"
    assert runway_ratio("1:1", None) == "960:960"
    assert runway_ratio("1584:672", None) == "1584:672"
    assert runway_ratio("5:4", None) is None


async def test_failure_reason_surfaces(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    fake.script.fail_reason = "The model could not render this scene."
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert final.raw_status == "FAILED"
    assert isinstance(final.error, UpstreamRejected)
    assert not isinstance(final.error, UpstreamContentPolicy)
    assert "could not render" in final.error.message
    assert "INTERNAL.BAD_OUTPUT" in final.error.message


async def test_content_moderation_is_a_content_policy_error(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    fake.script.content_policy = True
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamContentPolicy)
    assert "SAFETY.INPUT.TEXT" in final.error.message


async def test_rate_limit_then_success(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.retry_after_s == 1.0
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_error_is_retryable(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    fake.script.submit_statuses = [503]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [502]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(http: httpx.AsyncClient, base_url: str, fake: RunwayFake) -> None:
    adapter = RunwayAdapter(make_ctx(http, base_url, timeout_s=0.2))
    fake.script.delay_s = 0.5
    with pytest.raises(UpstreamTimeout) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable


async def test_malformed_body(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_shape(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_status_word_is_running(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_status = "WARMING_UP"
    status = await adapter.poll(ref)
    assert status.state == "running"
    assert status.raw_status == "WARMING_UP"


async def test_bad_api_key(http: httpx.AsyncClient, base_url: str) -> None:
    adapter = RunwayAdapter(make_ctx(http, base_url, api_key="wrong"))
    with pytest.raises(UpstreamAuthError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_bad_input_is_rejected_with_reason(adapter: RunwayAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"duration_s": 30}), ROUTE, ATTEMPT)
    assert "duration" in caught.value.message
    assert caught.value.status_code == 400


async def test_cancel(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    assert Capability.CANCEL in adapter.capabilities
    fake.script.latency_s = 30
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("DELETE", f"/v1/tasks/{ref.id}")
    status = await adapter.poll(ref)
    assert status.state == "canceled"
    assert status.raw_status == "CANCELLED"


async def test_no_callbacks(adapter: RunwayAdapter) -> None:
    assert Capability.CALLBACK not in adapter.capabilities
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b'{"id":"x"}')) is None


async def test_output_expired_before_fetch(adapter: RunwayAdapter, fake: RunwayFake) -> None:
    fake.script.output_ttl_s = 0
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))
