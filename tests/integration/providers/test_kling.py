"""The Kling adapter against its fake, over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
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
from vidgate.providers.kling import KlingAdapter, kling_error
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.kling import KlingFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-under-test")

SECRET = "sk-test-0123456789abcdef0123456789abcdef"  # Kling secret keys are 32+ characters
ROUTE = Route(provider="kling", model="kling-v2-1-master", image_model="kling-v2-1-i2v")
REQ = GenerationRequest(
    model="kling-2.1",
    prompt="a paper boat in a gutter stream",
    negative_prompt="text",
    duration_s=5,
    resolution="1080p",
    aspect_ratio="9:16",
    seed=11,
    options={"mode": "pro"},
)


@pytest.fixture
def fake(serve_fake: Any) -> KlingFake:
    fake = KlingFake(api_key="ak-test", secret_key=SECRET, script=FakeScript(latency_s=0.2))
    serve_fake(fake)
    return fake


@pytest.fixture
def adapter(fake: KlingFake, http: httpx.AsyncClient) -> KlingAdapter:
    return KlingAdapter(make_ctx(http, fake.base_url, api_key="ak-test", secret_key=SECRET))


async def finish(adapter: KlingAdapter, ref: UpstreamRef, within_s: float = 5.0) -> UpstreamStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not (status := await adapter.poll(ref)).terminal:
        assert loop.time() < deadline, "the job did not finish in time"
        await asyncio.sleep(0.05)
    return status


async def test_text_to_video_end_to_end(fake: KlingFake, adapter: KlingAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.state == {"kind": "text2video"}
    assert ref.request_id
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v1/videos/text2video")
    # Kling has no seed or resolution field; duration is a string.
    assert body == {
        "external_task_id": ATTEMPT.job_id,  # our reference, for find()
        "model_name": "kling-v2-1-master",
        "prompt": "a paper boat in a gutter stream",
        "negative_prompt": "text",
        "duration": "5",
        "aspect_ratio": "9:16",
        "mode": "pro",
    }
    token = fake.seen_headers[0]["authorization"].removeprefix("Bearer ")
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == ("HS256", "JWT")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == "ak-test"
    assert claims["exp"] - claims["nbf"] == 1805
    assert abs(claims["exp"] - (time.time() + 1800)) < 5

    first = await adapter.poll(ref)
    assert (first.state, first.raw_status) == ("queued", "submitted")
    status = await finish(adapter, ref)
    assert fake.requests[-1][1] == f"/v1/videos/text2video/{ref.id}"
    assert (status.state, status.raw_status) == ("succeeded", "succeed")
    assert_mp4(await collect(adapter.stream_output(status.outputs[0])))


async def test_token_is_cached(fake: KlingFake, adapter: KlingAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    await adapter.poll(ref)
    assert fake.seen_headers[0]["authorization"] == fake.seen_headers[1]["authorization"]


async def test_image_to_video(fake: KlingFake, adapter: KlingAdapter) -> None:
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url="data:image/png;base64,iVBORw0KGgo=", role="first_frame"),
                ImageInput(url="https://img.example/end.jpg", role="last_frame"),
            ),
            "provider_options": {"external_task_id": "job_123", "cfg_scale": 0.3},
        }
    )
    ref = await adapter.submit(req, ROUTE, ATTEMPT)
    assert ref.state == {"kind": "image2video"}
    _, path, body = fake.requests[0]
    assert path == "/v1/videos/image2video"
    assert body["model_name"] == "kling-v2-1-i2v"
    assert body["image"] == "iVBORw0KGgo="  # raw base64, the data: prefix stripped
    assert body["image_tail"] == "https://img.example/end.jpg"
    assert "aspect_ratio" not in body
    assert body["external_task_id"] == ATTEMPT.job_id  # ours: pass-through options never override it
    status = await finish(adapter, ref)
    assert fake.requests[-1][1] == f"/v1/videos/image2video/{ref.id}"
    assert status.state == "succeeded"


async def test_failure_reason_surfaces(fake: KlingFake, adapter: KlingAdapter) -> None:
    fake.script.fail_reason = "Failure to pass the risk control system"
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    assert (status.state, status.raw_status) == ("failed", "failed")
    assert isinstance(status.error, UpstreamRejected)
    assert status.error.message == "Failure to pass the risk control system"


async def test_content_policy(fake: KlingFake, adapter: KlingAdapter) -> None:
    fake.script.content_policy = True
    with pytest.raises(UpstreamContentPolicy) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert "1301" in caught.value.message
    assert caught.value.status_code == 400


async def test_rate_limit_then_success(fake: KlingFake, adapter: KlingAdapter) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert "1302" in caught.value.message
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_errors_are_retryable(fake: KlingFake, adapter: KlingAdapter) -> None:
    fake.script.submit_statuses = [500]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [504]
    with pytest.raises(UpstreamTimeout):  # 5002: Kling's internal timeout, retryable
        await adapter.poll(ref)


async def test_invalid_params(fake: KlingFake, adapter: KlingAdapter) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ.model_copy(update={"duration_s": 7}), ROUTE, ATTEMPT)
    assert "1201" in caught.value.message


async def test_timeout(fake: KlingFake, http: httpx.AsyncClient) -> None:
    fake.script.delay_s = 0.5
    ctx = make_ctx(http, fake.base_url, api_key="ak-test", timeout_s=0.1, secret_key=SECRET)
    with pytest.raises(UpstreamTimeout):
        await KlingAdapter(ctx).submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_and_unknown_shapes(fake: KlingFake, adapter: KlingAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    fake.script.malformed, fake.script.unknown_shape = False, True
    with pytest.raises(UpstreamProtocolError) as caught:
        await adapter.submit(REQ, ROUTE, SubmitAttempt.first("another-job"))
    assert caught.value.outcome_unknown  # a 2xx nobody can read: it may have been accepted
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


async def test_bad_secret_key(fake: KlingFake, http: httpx.AsyncClient) -> None:
    ctx = make_ctx(
        http, fake.base_url, api_key="ak-test", secret_key="wrong-0123456789abcdef0123456789abcdef"
    )
    with pytest.raises(UpstreamAuthError) as caught:
        await KlingAdapter(ctx).submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.status_code == 401
    assert "1002" in caught.value.message
    assert len(fake.seen_headers) == 2  # one fresh token was tried before giving up


async def test_missing_secret_key(fake: KlingFake, http: httpx.AsyncClient) -> None:
    with pytest.raises(UpstreamAuthError):
        await KlingAdapter(make_ctx(http, fake.base_url, api_key="ak-test")).submit(REQ, ROUTE, ATTEMPT)
    assert fake.requests == []


async def test_expired_token_is_reminted(fake: KlingFake, adapter: KlingAdapter) -> None:
    past = int(time.time()) - 3600
    stale = jwt.encode({"iss": "ak-test", "exp": past, "nbf": past - 5}, SECRET, "HS256")
    adapter.token._token, adapter.token._expires = stale, int(time.time()) + 3600
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id
    assert len(fake.seen_headers) == 2
    assert fake.seen_headers[0]["authorization"] == f"Bearer {stale}"


async def test_output_expired(fake: KlingFake, adapter: KlingAdapter) -> None:
    fake.script.output_ttl_s = 0
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(status.outputs[0]))


@pytest.fixture
def receiver() -> Iterator[tuple[list[CallbackRequest], str]]:
    calls: list[CallbackRequest] = []

    async def endpoint(request: Request) -> JSONResponse:
        calls.append(CallbackRequest(headers=dict(request.headers), body=await request.body()))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[HttpRoute("/cb/kling/tok", endpoint, methods=["POST"])])
    with serve_in_thread(app) as base:
        yield calls, f"{base}/cb/kling/tok"


async def test_callback_is_an_unverified_hint(
    fake: KlingFake, http: httpx.AsyncClient, receiver: tuple[list[CallbackRequest], str]
) -> None:
    calls, url = receiver
    ctx = make_ctx(http, fake.base_url, api_key="ak-test", callback_url=url, secret_key=SECRET)
    adapter = KlingAdapter(ctx)
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert fake.requests[0][2]["callback_url"] == f"{url}?job={ATTEMPT.job_id}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not calls:
        assert loop.time() < deadline, "no callback arrived"
        await asyncio.sleep(0.05)
    body = json.loads(calls[0].body)
    assert "code" not in body  # the bare task object, not the envelope
    assert (body["task_id"], body["task_status"]) == (ref.id, "succeed")
    result = adapter.parse_callback(calls[0])
    assert result is not None
    assert (result.upstream_id, result.verified, result.status) == (ref.id, False, None)


async def test_callback_parsing_edges(adapter: KlingAdapter) -> None:
    assert Capability.CALLBACK in adapter.capabilities
    assert Capability.SIGNED_CALLBACK not in adapter.capabilities
    assert Capability.CANCEL not in adapter.capabilities
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"<html>")) is None
    minimax = b'{"task_id": "1", "status": "success"}'
    assert adapter.parse_callback(CallbackRequest(headers={}, body=minimax)) is None
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"[1]")) is None
    with pytest.raises(UpstreamRejected, match="cannot cancel"):
        await adapter.cancel(UpstreamRef(id="1"))


async def test_unknown_status_word_is_running() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        data = {"task_id": "9", "task_status": "rendering"}
        return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": data})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        ctx = make_ctx(client, "http://kling", api_key="ak", secret_key=SECRET)
        status = await KlingAdapter(ctx).poll(UpstreamRef(id="9", state={"kind": "text2video"}))
    assert (status.state, status.raw_status) == ("running", "rendering")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (1004, UpstreamAuthError),
        (1102, UpstreamAuthError),
        (1201, UpstreamRejected),
        (1203, UpstreamRejected),
        (1301, UpstreamContentPolicy),
        (1303, UpstreamRateLimited),
        (5001, UpstreamUnavailable),
    ],
)
def test_codes(code: int, error: type[Exception]) -> None:
    assert type(kling_error(400, {"code": code, "message": "m"}, None)) is error
    assert kling_error(200, {"code": 0}, None) is None
