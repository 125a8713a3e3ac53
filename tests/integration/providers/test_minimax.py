"""The MiniMax Hailuo adapter against its fake, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as HttpRoute

from tests.integration.providers.conftest import assert_mp4, collect, make_ctx
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
from vidgate.providers.minimax import MinimaxAdapter, business_error, challenge_response
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.minimax import MinimaxFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="minimax", model="MiniMax-Hailuo-02", image_model="I2V-01-Director")
REQ = GenerationRequest(
    model="hailuo-02",
    prompt="a lighthouse at dusk",
    negative_prompt="people",
    duration_s=6,
    resolution="768p",
    aspect_ratio="16:9",
    seed=3,
)


@pytest.fixture
def fake(serve_fake: Any) -> MinimaxFake:
    fake = MinimaxFake(api_key="test-key", script=FakeScript(latency_s=0.2))
    serve_fake(fake)
    return fake


@pytest.fixture
def adapter(fake: MinimaxFake, http: httpx.AsyncClient) -> MinimaxAdapter:
    return MinimaxAdapter(make_ctx(http, fake.base_url))


async def finish(adapter: MinimaxAdapter, ref: UpstreamRef, within_s: float = 5.0) -> UpstreamStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not (status := await adapter.poll(ref)).terminal:
        assert loop.time() < deadline, "the job did not finish in time"
        await asyncio.sleep(0.05)
    return status


class Receiver:
    """Our callback endpoint: echoes the handshake (or not) and records the pushes."""

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.calls: list[CallbackRequest] = []

    async def endpoint(self, request: Request) -> JSONResponse:
        call = CallbackRequest(headers=dict(request.headers), body=await request.body())
        self.calls.append(call)
        if (echo := challenge_response(call)) is not None:
            return JSONResponse(echo if self.echo else {"ok": True})
        return JSONResponse({"ok": True})


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = Starlette(routes=[HttpRoute("/cb/minimax/tok", receiver.endpoint, methods=["POST"])])
    with serve_in_thread(app) as base:
        yield receiver, f"{base}/cb/minimax/tok"


async def test_text_to_video_end_to_end(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v1/video_generation")
    # No aspect_ratio, negative_prompt or seed on the wire: MiniMax has no such fields.
    assert body == {
        "model": "MiniMax-Hailuo-02",
        "prompt": "a lighthouse at dusk",
        "duration": 6,
        "resolution": "768P",
    }
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"

    status = await finish(adapter, ref)
    assert status.state == "succeeded"
    assert status.raw_status == "Success"
    paths = [p for _, p, _ in fake.requests]
    assert "/v1/query/video_generation" in paths
    assert paths[-1] == "/v1/files/retrieve"
    (output,) = status.outputs
    assert output.headers == {}  # download_url is a plain signed URL
    assert_mp4(await collect(adapter.stream_output(output)))


async def test_queued_words_map_to_queued(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    fake.script.latency_s = 5
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    status = await adapter.poll(ref)
    assert (status.state, status.raw_status) == ("queued", "Queueing")


async def test_image_to_video(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    first = "data:image/jpeg;base64,/9j/4AAQ"
    req = REQ.model_copy(
        update={
            "prompt": "",
            "images": (
                ImageInput(url=first, role="first_frame"),
                ImageInput(url="https://img.example/last.png", role="last_frame"),
            ),
            "options": {"prompt_optimizer": False},
            "provider_options": {"aigc_watermark": False},
        }
    )
    await adapter.submit(req, ROUTE, ATTEMPT)
    body = fake.requests[0][2]
    assert body["model"] == "I2V-01-Director"
    assert body["first_frame_image"] == first  # passed as given: MiniMax takes data URLs
    assert body["last_frame_image"] == "https://img.example/last.png"
    assert body["prompt_optimizer"] is False
    assert body["aigc_watermark"] is False
    assert "prompt" not in body


async def test_failure_reason_surfaces(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    fake.script.fail_reason = "video generation failed: internal render error"
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    assert status.state == "failed"
    assert status.raw_status == "Fail"
    assert isinstance(status.error, UpstreamRejected)
    assert "internal render error" in status.error.message


async def test_sensitive_input_is_content_policy(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    fake.script.content_policy = True
    with pytest.raises(UpstreamContentPolicy) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert "1026" in caught.value.message


async def test_rate_limit_then_success(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    fake.script.submit_statuses = [429]  # the fake answers as MiniMax does: HTTP 200, code 1002
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert "1002" in caught.value.message
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_errors_are_retryable(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    fake.script.submit_statuses = [502]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [503]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_invalid_params_are_rejected(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"duration_s": 7}), ROUTE, ATTEMPT)
    assert "2013" in caught.value.message
    assert not caught.value.retryable


async def test_timeout(fake: MinimaxFake, http: httpx.AsyncClient) -> None:
    fake.script.delay_s = 0.5
    adapter = MinimaxAdapter(make_ctx(http, fake.base_url, timeout_s=0.1))
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_and_unknown_shapes(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.malformed, fake.script.unknown_shape = False, True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


async def test_bad_api_key(fake: MinimaxFake, http: httpx.AsyncClient) -> None:
    adapter = MinimaxAdapter(make_ctx(http, fake.base_url, api_key="wrong"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert "2049" in caught.value.message
    unauthenticated = await http.post(f"{fake.base_url}/v1/video_generation", json={})
    assert unauthenticated.status_code == 200  # MiniMax reports auth failures in base_resp
    assert unauthenticated.json()["base_resp"]["status_code"] == 1004
    with pytest.raises(UpstreamAuthError):
        await MinimaxAdapter(make_ctx(http, fake.base_url, api_key=None)).submit(REQ, ROUTE, ATTEMPT)


async def test_output_expired(fake: MinimaxFake, adapter: MinimaxAdapter) -> None:
    fake.script.output_ttl_s = 0
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(status.outputs[0]))


async def wait_for(predicate: Any, within_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not predicate():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_callback_handshake_then_unverified_pushes(
    fake: MinimaxFake, http: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    adapter = MinimaxAdapter(make_ctx(http, fake.base_url, callback_url=url))
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert fake.requests[0][2]["callback_url"] == f"{url}?job={ATTEMPT.job_id}"

    def pushes() -> list[dict[str, Any]]:
        return [json.loads(c.body) for c in endpoint.calls[1:]]

    await wait_for(lambda: any(p.get("status") == "success" for p in pushes()))
    handshake = endpoint.calls[0]
    assert set(json.loads(handshake.body)) == {"challenge"}
    assert adapter.parse_callback(handshake) is None  # the handshake names no job
    assert fake.jobs[ref.id].extra["callback_validated"] is True
    assert [p["status"] for p in pushes()] == ["processing", "success"]
    for call in endpoint.calls[1:]:
        result = adapter.parse_callback(call)
        assert result is not None
        assert result.upstream_id == ref.id
        assert result.verified is False  # MiniMax does not sign: only a hint to poll now
        assert result.status is None


async def test_no_pushes_without_the_echo(fake: MinimaxFake, http: httpx.AsyncClient) -> None:
    endpoint = Receiver(echo=False)
    app = Starlette(routes=[HttpRoute("/cb", endpoint.endpoint, methods=["POST"])])
    with serve_in_thread(app) as base:
        adapter = MinimaxAdapter(make_ctx(http, fake.base_url, callback_url=f"{base}/cb"))
        ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
        await wait_for(lambda: "callback_validated" in fake.jobs[ref.id].extra)
        await finish(adapter, ref)
        await asyncio.sleep(0.1)
    assert fake.jobs[ref.id].extra["callback_validated"] is False
    assert len(endpoint.calls) == 1


async def test_callback_parsing_edges(adapter: MinimaxAdapter) -> None:
    challenge = CallbackRequest(headers={}, body=b'{"challenge": "abc"}')
    assert challenge_response(challenge) == {"challenge": "abc"}
    assert adapter.challenge_response(challenge) == {"challenge": "abc"}
    assert challenge_response(CallbackRequest(headers={}, body=b"nope")) is None
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"not json")) is None
    kling = b'{"task_id": "1", "task_status": "succeed", "status": "x"}'
    assert adapter.parse_callback(CallbackRequest(headers={}, body=kling)) is None
    claimed = b'{"task_id": 42, "status": "success", "file_id": "9"}'
    result = adapter.parse_callback(CallbackRequest(headers={}, body=claimed))
    assert result is not None
    assert (result.upstream_id, result.verified, result.status) == ("42", False, None)
    assert Capability.CALLBACK in adapter.capabilities
    assert Capability.SIGNED_CALLBACK not in adapter.capabilities


async def test_unknown_status_word_is_running() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"task_id": "1", "status": "Rendering", "base_resp": {"status_code": 0}}
        return httpx.Response(200, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        status = await MinimaxAdapter(make_ctx(client, "http://mm")).poll(UpstreamRef(id="1"))
    assert (status.state, status.raw_status) == ("running", "Rendering")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (1002, UpstreamRateLimited),
        (1004, UpstreamAuthError),
        (2049, UpstreamAuthError),
        (1008, UpstreamAuthError),
        (1026, UpstreamContentPolicy),
        (1027, UpstreamContentPolicy),
        (2013, UpstreamRejected),
        (1000, UpstreamUnavailable),
    ],
)
def test_business_codes(code: int, error: type[Exception]) -> None:
    found = business_error({"base_resp": {"status_code": code, "status_msg": "m"}}, None)
    assert type(found) is error
    assert business_error({"base_resp": {"status_code": 0}}, None) is None
    envelope = {"error": {"message": f"something ({code})", "http_code": "400"}}
    assert type(business_error(envelope, None)) is error
