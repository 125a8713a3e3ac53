"""DashscopeAdapter against DashscopeFake on a real port."""

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
from vidgate.providers.dashscope import KF2V_PATH, VIDEO_PATH, DashscopeAdapter, wan_size
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.dashscope import DashscopeFake

from .conftest import assert_mp4, collect, make_ctx

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="dashscope", model="wan2.2-t2v-plus", image_model="wan2.2-i2v-plus")
REQ = GenerationRequest(
    model="wan-2.2",
    prompt="a lantern festival at night",
    negative_prompt="low quality",
    duration_s=5,
    resolution="1080p",
    aspect_ratio="16:9",
    seed=12345,
)


@pytest.fixture
def fake() -> DashscopeFake:
    return DashscopeFake(script=FakeScript(latency_s=0.2))


@pytest.fixture
def base_url(fake: DashscopeFake, serve_fake: Any) -> str:
    url: str = serve_fake(fake)
    return url


@pytest.fixture
def adapter(http: httpx.AsyncClient, base_url: str) -> DashscopeAdapter:
    return DashscopeAdapter(make_ctx(http, base_url))


async def wait_terminal(adapter: DashscopeAdapter, ref: UpstreamRef) -> list[UpstreamStatus]:
    seen: list[UpstreamStatus] = []
    for _ in range(200):
        status = await adapter.poll(ref)
        seen.append(status)
        if status.terminal:
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"never terminal: {seen[-1]}")


async def test_text_to_video_end_to_end(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.request_id
    seen = await wait_terminal(adapter, ref)
    final = seen[-1]
    assert final.state == "succeeded"
    assert final.raw_status == "SUCCEEDED"
    assert {s.raw_status for s in seen} <= {"PENDING", "RUNNING", "SUCCEEDED"}
    assert "RUNNING" in {s.raw_status for s in seen}
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))

    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", VIDEO_PATH)
    assert body == {
        "model": "wan2.2-t2v-plus",
        "input": {"prompt": "a lantern festival at night", "negative_prompt": "low quality"},
        "parameters": {"size": "1920*1080", "duration": 5, "seed": 12345},
    }
    headers = fake.seen_headers[0]
    assert headers["authorization"] == "Bearer test-key"
    assert headers["x-dashscope-async"] == "enable"
    # Polls carry only the Authorization header.
    assert "x-dashscope-async" not in fake.seen_headers[1]


async def test_image_to_video_uses_img_url_and_resolution(
    adapter: DashscopeAdapter, fake: DashscopeFake
) -> None:
    req = REQ.model_copy(
        update={
            "images": (ImageInput(url="https://img.example/cat.png"),),
            "resolution": "720p",
            "provider_options": {"parameters": {"prompt_extend": False}},
        }
    )
    await adapter.submit(req, ROUTE, ATTEMPT)
    _, path, body = fake.requests[-1]
    assert path == VIDEO_PATH
    assert body["model"] == "wan2.2-i2v-plus"
    assert body["input"]["img_url"] == "https://img.example/cat.png"
    assert body["parameters"] == {
        "resolution": "720P",
        "duration": 5,
        "seed": 12345,
        "prompt_extend": False,
    }


async def test_first_last_frame_model_uses_image2video(
    adapter: DashscopeAdapter, fake: DashscopeFake
) -> None:
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="https://img.example/a.png", role="first_frame"),
                ImageInput(url="https://img.example/b.png", role="last_frame"),
            )
        }
    )
    ref = await adapter.submit(req, Route(provider="dashscope", model="wanx2.1-kf2v-plus"), ATTEMPT)
    _, path, body = fake.requests[-1]
    assert path == KF2V_PATH
    assert body["input"]["first_frame_url"] == "https://img.example/a.png"
    assert body["input"]["last_frame_url"] == "https://img.example/b.png"
    assert "img_url" not in body["input"]
    assert (await wait_terminal(adapter, ref))[-1].state == "succeeded"


WAN26 = Route(provider="dashscope", model="wan2.6-t2v", image_model="wan2.6-i2v")


@pytest.mark.parametrize(
    ("shot", "sent"),
    [
        ("multi", {"shot_type": "multi", "prompt_extend": True}),  # multi needs the prompt rewrite
        ("single", {"shot_type": "single"}),
    ],
)
async def test_shot_type_goes_in_parameters_on_wan26(
    adapter: DashscopeAdapter, fake: DashscopeFake, shot: str, sent: dict[str, Any]
) -> None:
    req = REQ.model_copy(update={"model": "wan-2.6", "options": {"shot_type": shot}})
    ref = await adapter.submit(req, WAN26, ATTEMPT)
    _, _, body = fake.requests[-1]
    assert set(body) == {"model", "input", "parameters"}
    assert {k: body["parameters"][k] for k in sent} == sent
    assert (await wait_terminal(adapter, ref))[-1].state == "succeeded"


async def test_multi_shot_on_a_model_without_shots_is_refused(
    adapter: DashscopeAdapter, fake: DashscopeFake
) -> None:
    """Only the wan2.6 series makes several shots: elsewhere the job is refused, not sent
    without the shots it asked for."""
    with pytest.raises(UpstreamRejected, match="multi-shot"):
        await adapter.submit(REQ.model_copy(update={"options": {"shot_type": "multi"}}), ROUTE, ATTEMPT)
    assert not fake.jobs
    await adapter.submit(REQ.model_copy(update={"options": {"shot_type": "single"}}), ROUTE, ATTEMPT)
    assert "shot_type" not in fake.requests[-1][2]["parameters"]  # one shot is all it makes


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"model": "wan2.2-t2v-plus", "parameters": {"shot_type": "multi"}}, "does not support"),
        ({"model": "wan2.6-t2v", "parameters": {"shot_type": "many"}}, "invalid"),
        (
            {"model": "wan2.6-t2v", "parameters": {"shot_type": "multi", "prompt_extend": False}},
            "prompt_extend",
        ),
        ({"model": "wan2.6-t2v", "multi_shots": True}, "Unrecognized field 'multi_shots'"),
    ],
)
async def test_the_fake_holds_shot_type_to_the_docs(
    http: httpx.AsyncClient, base_url: str, fake: DashscopeFake, body: dict[str, Any], why: str
) -> None:
    full = {"input": {"prompt": "p"}, **body}
    headers = {"Authorization": "Bearer test-key", "X-DashScope-Async": "enable"}
    answer = await http.post(f"{base_url}{VIDEO_PATH}", json=full, headers=headers)
    assert answer.status_code == 400
    assert why in answer.json()["message"]
    assert not fake.jobs


@pytest.mark.parametrize(
    "passed_on",
    [
        {"enable_prompt_expansion": False, "audio": "https://a.example/voice.mp3"},  # Apiframe wanParams
        {"prompt_extend": False, "audio_url": "https://a.example/voice.mp3"},  # Venice, DashScope's names
    ],
)
async def test_top_level_controls_go_where_dashscope_reads_them(
    adapter: DashscopeAdapter, fake: DashscopeFake, passed_on: dict[str, Any]
) -> None:
    """Left at the top level they would be ignored (the fake refuses them there)."""
    wan25 = Route(provider="dashscope", model="wan2.5-t2v-preview")
    await adapter.submit(REQ.model_copy(update={"provider_options": passed_on}), wan25, ATTEMPT)
    _, _, body = fake.requests[-1]
    assert set(body) == {"model", "input", "parameters"}
    assert body["parameters"]["prompt_extend"] is False
    assert body["input"]["audio_url"] == "https://a.example/voice.mp3"


def test_sizes() -> None:
    assert wan_size("480p", "9:16") == "480*832"
    assert wan_size("720P", "4:3") == "1088*832"
    assert wan_size(None, None) == "1280*720"
    assert wan_size("4k", "16:9") is None


async def test_failure_reason_surfaces(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.fail_reason = "The video could not be generated."
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert final.raw_status == "FAILED"
    assert isinstance(final.error, UpstreamRejected)
    assert final.error.message == "InternalError: The video could not be generated."


async def test_content_policy_at_submit(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.content_policy = True
    with pytest.raises(UpstreamContentPolicy) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert "DataInspectionFailed" in caught.value.message
    assert caught.value.request_id


async def test_rate_limit_then_success(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.retry_after_s == 1.0
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_error_is_retryable(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.submit_statuses = [500]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [503]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(http: httpx.AsyncClient, base_url: str, fake: DashscopeFake) -> None:
    adapter = DashscopeAdapter(make_ctx(http, base_url, timeout_s=0.2))
    fake.script.delay_s = 0.5
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_body(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_shape(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_status_word_is_running(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_status = "SUSPENDED"
    status = await adapter.poll(ref)
    assert status.state == "running"
    assert status.raw_status == "SUSPENDED"


async def test_unknown_task_has_expired(adapter: DashscopeAdapter) -> None:
    status = await adapter.poll(UpstreamRef(id="0385dc79-gone"))
    assert status.state == "failed"
    assert status.raw_status == "UNKNOWN"
    assert isinstance(status.error, UpstreamOutputExpired)


async def test_bad_api_key(http: httpx.AsyncClient, base_url: str) -> None:
    adapter = DashscopeAdapter(make_ctx(http, base_url, api_key="wrong"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.status_code == 401


async def test_bad_input_is_rejected_with_code(adapter: DashscopeAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"duration_s": 99}), ROUTE, ATTEMPT)
    assert caught.value.message.startswith("InvalidParameter:")
    assert caught.value.request_id


async def test_cancel_pending_task(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    assert Capability.CANCEL in adapter.capabilities
    fake.script.latency_s = 30
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("POST", f"/api/v1/tasks/{ref.id}/cancel")
    status = await adapter.poll(ref)
    assert status.state == "canceled"
    assert status.raw_status == "CANCELED"


async def test_cancel_running_task_is_tolerated(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.latency_s = 0.4
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    for _ in range(100):
        if (await adapter.poll(ref)).state == "running":
            break
        await asyncio.sleep(0.01)
    await adapter.cancel(ref)  # DashScope refuses; the adapter logs and carries on
    assert (await wait_terminal(adapter, ref))[-1].state == "succeeded"


def test_no_callbacks(adapter: DashscopeAdapter) -> None:
    assert Capability.CALLBACK not in adapter.capabilities
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"{}")) is None


async def test_output_expired_before_fetch(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    fake.script.output_ttl_s = 0
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))


async def test_no_size_when_none_was_asked(adapter: DashscopeAdapter, fake: DashscopeFake) -> None:
    req = GenerationRequest(model="wan-2.2", prompt="waves")
    await adapter.submit(req, ROUTE, ATTEMPT)
    assert fake.requests[-1][2]["parameters"] == {}


@pytest.mark.parametrize(
    "passed_on",
    [
        # Apiframe's and Venice's/DashScope's names together, agreeing, in either order.
        {"enable_prompt_expansion": False, "prompt_extend": False},
        {"prompt_extend": True, "enable_prompt_expansion": True},
        {"audio": "https://a.example/v.mp3", "audio_url": "https://a.example/v.mp3"},
    ],
)
async def test_two_names_for_one_control_that_agree_are_both_moved(
    adapter: DashscopeAdapter, fake: DashscopeFake, passed_on: dict[str, Any]
) -> None:
    wan25 = Route(provider="dashscope", model="wan2.5-t2v-preview")
    await adapter.submit(REQ.model_copy(update={"provider_options": passed_on}), wan25, ATTEMPT)
    _, _, body = fake.requests[-1]
    assert set(body) == {"model", "input", "parameters"}  # nothing left at the top level
    if "prompt_extend" in passed_on:
        assert body["parameters"]["prompt_extend"] is passed_on["prompt_extend"]
    else:
        assert body["input"]["audio_url"] == passed_on["audio_url"]


@pytest.mark.parametrize(
    ("passed_on", "named"),
    [
        (
            {"enable_prompt_expansion": False, "prompt_extend": True},
            "prompt_extend (True) and enable_prompt_expansion",
        ),
        (
            {"prompt_extend": False, "enable_prompt_expansion": True},
            "prompt_extend (False) and enable_prompt_expansion",
        ),
        ({"audio": "https://a.example/1.mp3", "audio_url": "https://a.example/2.mp3"}, "audio_url"),
    ],
)
async def test_two_names_for_one_control_that_disagree_are_refused_before_sending(
    adapter: DashscopeAdapter, fake: DashscopeFake, passed_on: dict[str, Any], named: str
) -> None:
    wan25 = Route(provider="dashscope", model="wan2.5-t2v-preview")
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"provider_options": passed_on}), wan25, ATTEMPT)
    assert named in caught.value.message and "disagree" in caught.value.message
    assert not caught.value.retryable
    assert fake.requests == []  # nothing reached DashScope
