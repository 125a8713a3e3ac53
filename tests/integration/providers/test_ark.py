"""ArkAdapter (Seedance) against ArkFake on a real port."""

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
from vidgate.providers.ark import ArkAdapter
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
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.ark import ArkFake
from vidgate.testing.server import serve_in_thread

from .conftest import assert_mp4, collect, make_ctx

ATTEMPT = SubmitAttempt.first("job-under-test")

TASKS = "/api/v3/contents/generations/tasks"
ROUTE = Route(
    provider="ark", model="seedance-1-0-lite-t2v-250428", image_model="seedance-1-0-lite-i2v-250428"
)
REQ = GenerationRequest(
    model="seedance-1.0-lite",
    prompt="A cat surfing at sunset",
    duration_s=5,
    resolution="1080p",
    aspect_ratio="16:9",
    seed=11,
)


@pytest.fixture
def fake() -> ArkFake:
    return ArkFake(script=FakeScript(latency_s=0.2))


@pytest.fixture
def base_url(fake: ArkFake, serve_fake: Any) -> str:
    url: str = serve_fake(fake)
    return url


@pytest.fixture
def adapter(http: httpx.AsyncClient, base_url: str) -> ArkAdapter:
    return ArkAdapter(make_ctx(http, base_url))


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[CallbackRequest]]]:
    """A small callback receiver on a real port: (URL to register, calls received)."""
    calls: list[CallbackRequest] = []

    async def hook(request: Request) -> Response:
        body = await request.body()
        calls.append(CallbackRequest(dict(request.headers), body, dict(request.query_params)))
        return Response(status_code=200)

    app = Starlette(routes=[HttpRoute("/cb/ark/{token}", hook, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield f"{url}/cb/ark/tok-456", calls


async def wait_terminal(adapter: ArkAdapter, ref: UpstreamRef) -> list[UpstreamStatus]:
    seen: list[UpstreamStatus] = []
    for _ in range(200):
        status = await adapter.poll(ref)
        seen.append(status)
        if status.terminal:
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"never terminal: {seen[-1]}")


async def test_text_to_video_end_to_end(adapter: ArkAdapter, fake: ArkFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.id.startswith("cgt-")
    seen = await wait_terminal(adapter, ref)
    final = seen[-1]
    assert final.state == "succeeded"
    assert final.raw_status == "succeeded"
    assert "running" in {s.raw_status for s in seen}
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))

    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", TASKS)
    assert body == {  # settings as top-level fields, as the current BytePlus SDK sends them
        "model": "seedance-1-0-lite-t2v-250428",
        "content": [{"type": "text", "text": "A cat surfing at sunset"}],
        "resolution": "1080p",
        "ratio": "16:9",
        "duration": 5,
        "seed": 11,
    }
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"


async def test_images_use_roles_and_the_image_model(adapter: ArkAdapter, fake: ArkFake) -> None:
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="https://img.example/a.png", role="first_frame"),
                ImageInput(url="data:image/png;base64,AAAA", role="last_frame"),
            ),
            "audio": False,
        }
    )
    await adapter.submit(req, ROUTE, ATTEMPT)
    body = fake.requests[-1][2]
    assert body["model"] == "seedance-1-0-lite-i2v-250428"
    assert body["content"][1:] == [
        {
            "type": "image_url",
            "image_url": {"url": "https://img.example/a.png"},
            "role": "first_frame",
        },
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,AAAA"},
            "role": "last_frame",
        },
    ]
    assert body["generate_audio"] is False


async def test_reference_images(adapter: ArkAdapter, fake: ArkFake) -> None:
    req = REQ.model_copy(update={"images": (ImageInput(url="https://r.example/1.png", role="reference"),)})
    await adapter.submit(req, Route(provider="ark", model="dreamina-seedance-2-0-260128"), ATTEMPT)
    assert fake.requests[-1][2]["content"][1]["role"] == "reference_image"


async def test_params_and_options_override_the_fields(adapter: ArkAdapter, fake: ArkFake) -> None:
    route = Route(provider="ark", model="dreamina-seedance-2-0-260128", params={"resolution": "720p"})
    req = REQ.model_copy(update={"provider_options": {"ratio": "9:16", "service_tier": "flex"}})
    await adapter.submit(req, route, ATTEMPT)
    body = fake.requests[-1][2]
    assert body["content"][0]["text"] == "A cat surfing at sunset"
    assert (body["duration"], body["seed"]) == (5, 11)
    assert body["resolution"] == "720p"
    assert body["ratio"] == "9:16"
    assert body["service_tier"] == "flex"


async def test_failure_reason_surfaces(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.fail_reason = "The service encountered an unexpected internal error."
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert final.error.message == (
        "InternalServiceError: The service encountered an unexpected internal error."
    )


async def test_content_policy_at_submit(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.content_policy = True
    with pytest.raises(UpstreamContentPolicy) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert "InputTextSensitiveContentDetected" in caught.value.message


async def test_rate_limit_then_success(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.retry_after_s == 1.0
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_error_is_retryable(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.submit_statuses = [500]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [503]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(http: httpx.AsyncClient, base_url: str, fake: ArkFake) -> None:
    adapter = ArkAdapter(make_ctx(http, base_url, timeout_s=0.2))
    fake.script.delay_s = 0.5
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_body(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_shape(adapter: ArkAdapter, fake: ArkFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_status_word_is_running(adapter: ArkAdapter, fake: ArkFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_status = "paused"
    status = await adapter.poll(ref)
    assert status.state == "running"
    assert status.raw_status == "paused"


async def test_expired_task_fails(adapter: ArkAdapter, fake: ArkFake) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.force_status = "expired"
    status = await adapter.poll(ref)
    assert status.state == "failed"
    assert isinstance(status.error, UpstreamTimeout)


async def test_bad_api_key(http: httpx.AsyncClient, base_url: str) -> None:
    adapter = ArkAdapter(make_ctx(http, base_url, api_key="wrong"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert "AuthenticationError" in caught.value.message


async def test_bad_input_is_rejected_with_code(adapter: ArkAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"aspect_ratio": "5:4"}), ROUTE, ATTEMPT)
    assert caught.value.message.startswith("InvalidParameter:")
    assert "`ratio`" in caught.value.message


async def test_the_fake_refuses_prompt_flags(http: httpx.AsyncClient, base_url: str, fake: ArkFake) -> None:
    """The old ``--flag`` form is refused, so an adapter sending it cannot pass unnoticed."""
    answer = await http.post(
        f"{base_url}{TASKS}",
        json={"model": "m", "content": [{"type": "text", "text": "a cat --ratio 16:9"}]},
        headers={"Authorization": "Bearer test-key"},
    )
    assert answer.status_code == 400
    assert "--ratio" in answer.json()["error"]["message"]
    assert not fake.jobs


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"duration": 5, "frames": 121}, "frames"),
        ({"frames": 30}, "frames"),
        ({"service_tier": "fast"}, "service_tier"),
        ({"execution_expires_after": 60}, "execution_expires_after"),
        ({"draft": "yes"}, "draft"),
    ],
)
async def test_the_fake_checks_the_sdk_fields(
    http: httpx.AsyncClient, base_url: str, fake: ArkFake, fields: dict[str, Any], param: str
) -> None:
    """The fields the BytePlus SDK can send, held to their documented values."""
    body = {"model": "m", "content": [{"type": "text", "text": "a cat"}], **fields}
    answer = await http.post(f"{base_url}{TASKS}", json=body, headers={"Authorization": "Bearer test-key"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param
    assert not fake.jobs


async def test_the_fake_reads_null_as_absent(http: httpx.AsyncClient, base_url: str, fake: ArkFake) -> None:
    """The BytePlus SDK sends each argument it was not given as ``null``."""
    body = {"model": "m", "content": [{"type": "text", "text": "a cat"}], "seed": None, "frames": None}
    answer = await http.post(f"{base_url}{TASKS}", json=body, headers={"Authorization": "Bearer test-key"})
    assert answer.status_code == 200
    assert fake.jobs[answer.json()["id"]].body == {"model": "m", "content": body["content"]}


async def test_cancel_queued_task(adapter: ArkAdapter, fake: ArkFake) -> None:
    assert Capability.CANCEL in adapter.capabilities
    fake.script.latency_s = 30
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("DELETE", f"{TASKS}/{ref.id}")
    status = await adapter.poll(ref)
    assert status.state == "canceled"
    assert status.raw_status == "cancelled"


async def test_cancel_running_task_is_tolerated(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.latency_s = 0.4
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    for _ in range(100):
        if (await adapter.poll(ref)).state == "running":
            break
        await asyncio.sleep(0.01)
    await adapter.cancel(ref)  # Ark refuses; the adapter logs and carries on
    assert (await wait_terminal(adapter, ref))[-1].state == "succeeded"


async def test_callback_is_an_unverified_hint(
    http: httpx.AsyncClient,
    base_url: str,
    fake: ArkFake,
    receiver: tuple[str, list[CallbackRequest]],
) -> None:
    url, calls = receiver
    adapter = ArkAdapter(make_ctx(http, base_url, callback_url=url))
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert fake.requests[-1][2]["callback_url"] == f"{url}?job={ATTEMPT.job_id}"
    for _ in range(200):
        if any(json.loads(c.body)["status"] == "succeeded" for c in calls):
            break
        await asyncio.sleep(0.02)
    assert [json.loads(c.body)["status"] for c in calls][-1] == "succeeded"
    for call in calls:
        result = adapter.parse_callback(call)
        assert result is not None
        assert result.upstream_id == ref.id
        assert result.verified is False
        assert result.status is None
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"[1, 2]")) is None
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b'{"id": 5}')) is None


async def test_output_expired_before_fetch(adapter: ArkAdapter, fake: ArkFake) -> None:
    fake.script.output_ttl_s = 0
    final = (await wait_terminal(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT)))[-1]
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))
