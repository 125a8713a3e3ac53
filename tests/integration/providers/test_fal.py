"""The fal adapter against the fal fake on a real port."""

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
from vidgate.providers.fal import FalAdapter, app_id, parse_jwks
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.fal import FalFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-under-test")

KLING = Route(
    "fal",
    "fal-ai/kling-video/v2.1/master/text-to-video",
    image_model="fal-ai/kling-video/v2.1/master/image-to-video",
)
REQ = GenerationRequest(model="kling-2.1", prompt="a cat surfing", duration_s=5, aspect_ratio="16:9")


@pytest.fixture
def fake() -> FalFake:
    return FalFake(script=FakeScript(latency_s=0.2))


async def run_to_end(adapter: FalAdapter, ref: UpstreamRef, limit_s: float = 5.0) -> list[UpstreamStatus]:
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
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A tiny Starlette app that records the callbacks it receives."""
    calls: list[tuple[dict[str, str], bytes]] = []

    async def record(request: Request) -> JSONResponse:
        calls.append((dict(request.headers), await request.body()))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[StarletteRoute("/cb/fal/{token}", record, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield url, calls


async def test_success_end_to_end(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)

    # the request the fake received: the endpoint path, the documented body, the Key header
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/fal-ai/kling-video/v2.1/master/text-to-video")
    assert body == {"prompt": "a cat surfing", "duration": "5", "aspect_ratio": "16:9"}
    assert fake.seen_headers[0]["authorization"] == "Key test-key"
    # status/result URLs use the app id only (the sub-path is dropped)
    assert ref.state["status_url"].endswith(f"/fal-ai/kling-video/requests/{ref.id}/status")

    seen = await run_to_end(adapter, ref)
    assert {s.state for s in seen[:-1]} <= {"queued", "running"}
    assert seen[-1].state == "succeeded"
    assert seen[-1].raw_status == "COMPLETED"
    assert fake.requests[1][1].endswith("/status")
    data = await collect(adapter.stream_output(seen[-1].outputs[0]))
    assert_mp4(data)


async def test_any_endpoint_id_and_namespaces(
    serve_fake: Any, http: httpx.AsyncClient, fake: FalFake
) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    route = Route("fal", "fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    ref = await adapter.submit(REQ, route, ATTEMPT)
    assert fake.requests[0][1] == "/fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
    assert (await run_to_end(adapter, ref))[-1].state == "succeeded"
    assert app_id("workflows/me/flow/sub") == "workflows/me/flow"
    assert app_id("fal-ai/veo3/fast") == "fal-ai/veo3"


async def test_image_uses_the_i2v_endpoint_and_image_url(
    serve_fake: Any, http: httpx.AsyncClient, fake: FalFake
) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    req = REQ.model_copy(
        update={
            "images": (ImageInput(url="https://img.example/cat.png"),),
            "negative_prompt": "blur",
            "provider_options": {"cfg_scale": 0.7, "duration": "10"},
        }
    )
    route = Route("fal", KLING.model, KLING.image_model, params={"cfg_scale": 0.5})
    await adapter.submit(req, route, ATTEMPT)
    _, path, body = fake.requests[0]
    assert path == "/fal-ai/kling-video/v2.1/master/image-to-video"
    assert body["image_url"] == "https://img.example/cat.png"
    assert body["negative_prompt"] == "blur"
    # Pass-through options only add fields: the route's and the validated request's stay (issue 14).
    assert body["cfg_scale"] == 0.5
    assert body["duration"] == "5"


async def test_veo_mapping(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    req = GenerationRequest(
        model="veo3",
        prompt="p",
        duration_s=8,
        resolution="1080p",
        aspect_ratio="9:16",
        audio=True,
        seed=7,
    )
    await adapter.submit(req, Route("fal", "fal-ai/veo3/fast"), ATTEMPT)
    assert fake.requests[0][2] == {
        "prompt": "p",
        "duration": "8s",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "seed": 7,
        "generate_audio": True,
    }


IMAGE = "https://img.example/cat.png"


@pytest.mark.parametrize(
    ("endpoint", "extra", "expected"),
    [
        # Kling 3.0 Pro/Standard: the first frame is start_image_url, the audio switch is sent.
        (
            "fal-ai/kling-video/v3/pro/image-to-video",
            {"audio": False},
            {"duration": "5", "generate_audio": False, "start_image_url": IMAGE},
        ),
        # Kling O3: image_url and generate_audio (fal's default is silent, so it is always sent).
        (
            "fal-ai/kling-video/o3/standard/image-to-video",
            {"audio": True},
            {"duration": "5", "generate_audio": True, "image_url": IMAGE},
        ),
        # Kling 3.0 Turbo: image_url, no audio switch.
        (
            "fal-ai/kling-video/v3/turbo/pro/image-to-video",
            {"audio": False},
            {"duration": "5", "image_url": IMAGE},
        ),
        # LTX 2.3: the duration is an integer.
        (
            "fal-ai/ltx-2.3/image-to-video/fast",
            {"audio": True, "resolution": "1440p", "duration_s": 8},
            {"duration": 8, "resolution": "1440p", "generate_audio": True, "image_url": IMAGE},
        ),
        # Vidu Q3: an integer duration, the audio switch is `audio`.
        (
            "fal-ai/vidu/q3/image-to-video",
            {"audio": True, "resolution": "540p"},
            {"duration": 5, "resolution": "540p", "audio": True, "image_url": IMAGE},
        ),
        # PixVerse v5.6: the audio switch is `generate_audio_switch`.
        (
            "fal-ai/pixverse/v5.6/image-to-video",
            {"audio": False, "resolution": "720p"},
            {"duration": "5", "resolution": "720p", "generate_audio_switch": False, "image_url": IMAGE},
        ),
        # Ovi: one fixed clip; neither duration nor audio switch.
        ("fal-ai/ovi/image-to-video", {"audio": True}, {"image_url": IMAGE}),
        # Seedance 2.0 and 1.5 call the model's own choice of frame "auto", Ark "adaptive".
        (
            "bytedance/seedance-2.0/fast/image-to-video",
            {"audio": True, "aspect_ratio": "adaptive", "resolution": "720p"},
            {
                "duration": "5",
                "aspect_ratio": "auto",
                "resolution": "720p",
                "generate_audio": True,
                "image_url": IMAGE,
            },
        ),
        (
            "fal-ai/bytedance/seedance/v1.5/pro/image-to-video",
            {"audio": False, "aspect_ratio": "adaptive"},
            {"duration": "5", "aspect_ratio": "auto", "generate_audio": False, "image_url": IMAGE},
        ),
        # Fixed frames go as they are.
        (
            "bytedance/seedance-2.0/image-to-video",
            {"audio": True, "aspect_ratio": "21:9"},
            {"duration": "5", "aspect_ratio": "21:9", "generate_audio": True, "image_url": IMAGE},
        ),
    ],
)
async def test_first_frame_and_audio_fields_per_endpoint(
    serve_fake: Any,
    http: httpx.AsyncClient,
    fake: FalFake,
    endpoint: str,
    extra: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    req = GenerationRequest(
        model="m", prompt="a cat", duration_s=5, images=(ImageInput(url=IMAGE),)
    ).model_copy(update=extra)
    ref = await adapter.submit(req, Route("fal", endpoint), ATTEMPT)
    _, path, body = fake.requests[0]
    assert path == f"/{endpoint}"
    assert body == {"prompt": "a cat", **expected}
    assert (await run_to_end(adapter, ref))[-1].state == "succeeded"


async def test_the_fake_refuses_a_first_frame_under_the_wrong_field(
    serve_fake: Any, http: httpx.AsyncClient, fake: FalFake
) -> None:
    # fal's Kling 3.0 Pro image-to-video requires start_image_url; image_url alone is a 422.
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    route = Route("fal", "fal-ai/kling-video/v3/pro/image-to-video", params={"image_url": IMAGE})
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ, route, ATTEMPT)
    assert caught.value.status_code == 422
    assert fake.requests[0][2]["image_url"] == IMAGE


async def test_failure_reason_surfaces(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.fail_reason = "CUDA out of memory"
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, KLING, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert not isinstance(final.error, UpstreamContentPolicy)
    assert "CUDA out of memory" in final.error.message


async def test_content_policy(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.content_policy = True
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, KLING, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamContentPolicy)
    assert "flagged" in final.error.message


async def test_rate_limit_then_success(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.submit_statuses = [429]
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.retry_after_s == 1.0
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    assert ref.id in fake.jobs


async def test_5xx_is_retryable(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.submit_statuses = [503]
    fake.script.poll_statuses = [502]
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.delay_s = 0.5
    adapter = FalAdapter(make_ctx(http, serve_fake(fake), timeout_s=0.1))
    with pytest.raises(UpstreamTimeout) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert caught.value.retryable


async def test_malformed_body(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.malformed = True
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, KLING, ATTEMPT)


async def test_unknown_shape(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, KLING, ATTEMPT)


async def test_bad_api_key(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake), api_key="wrong"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, KLING, ATTEMPT)
    assert not caught.value.retryable


async def test_invalid_input_is_rejected(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    route = Route("fal", KLING.model, params={"prompt": None})
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ, route, ATTEMPT)
    assert caught.value.status_code == 422
    assert "field required" in caught.value.message


async def test_output_expired(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, KLING, ATTEMPT)))[-1]
    fake.script.output_ttl_s = 0
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))


async def test_cancel_while_queued_and_after(serve_fake: Any, http: httpx.AsyncClient, fake: FalFake) -> None:
    fake.script.latency_s = 5
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    queued = await adapter.poll(ref)
    assert queued.state == "queued"
    assert queued.queue_position == 0
    await adapter.cancel(ref)
    assert fake.requests[-1][:2] == ("PUT", f"/fal-ai/kling-video/requests/{ref.id}/cancel")
    assert fake.jobs[ref.id].canceled
    fake.script.latency_s = 0.05
    done = await adapter.submit(REQ, KLING, ATTEMPT)
    await run_to_end(adapter, done)
    await adapter.cancel(done)  # 400 ALREADY_COMPLETED is a no-op


async def test_signed_webhook(
    serve_fake: Any,
    http: httpx.AsyncClient,
    fake: FalFake,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, calls = receiver
    ctx = make_ctx(http, serve_fake(fake), callback_url=f"{url}/cb/fal/tok123")
    adapter = FalAdapter(ctx)
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    deadline = time.monotonic() + 5
    while not calls:
        assert time.monotonic() < deadline, "no webhook arrived"
        await asyncio.sleep(0.03)
    headers, body = calls[0]

    result = adapter.parse_callback(CallbackRequest(headers=headers, body=body))
    assert result is not None
    assert result.verified
    assert result.upstream_id == ref.id
    assert result.status is not None
    assert result.status.state == "succeeded"
    assert_mp4(await collect(adapter.stream_output(result.status.outputs[0])))

    tampered = body.replace(b'"OK"', b'"ERROR"')
    assert adapter.parse_callback(CallbackRequest(headers=headers, body=tampered)) is None
    stale = {**headers, **fake.sign(ref.id, body, timestamp=int(time.time()) - 600)}
    assert adapter.parse_callback(CallbackRequest(headers=stale, body=body)) is None
    unsigned = {k: v for k, v in headers.items() if not k.startswith("x-fal-webhook")}
    hint = adapter.parse_callback(CallbackRequest(headers=unsigned, body=body))
    assert hint is not None
    assert not hint.verified
    assert hint.status is None
    assert adapter.parse_callback(CallbackRequest(headers=headers, body=b'{"other": 1}')) is None


async def test_webhook_query_param_and_error_payload(
    serve_fake: Any, http: httpx.AsyncClient, fake: FalFake
) -> None:
    base = serve_fake(fake)
    fake.script.send_callbacks = False
    ctx = make_ctx(http, base, callback_url="https://gw.example/cb/fal/tok")
    adapter = FalAdapter(ctx)
    ref = await adapter.submit(REQ, KLING, ATTEMPT)
    assert fake.jobs[ref.id].callback_url == f"https://gw.example/cb/fal/tok?job={ATTEMPT.job_id}"
    payload = {
        "request_id": ref.id,
        "gateway_request_id": ref.id,
        "status": "ERROR",
        "error": "Invalid status code: 422",
        "payload": {"detail": [{"loc": ["body"], "msg": "flagged", "type": "content_policy_violation"}]},
    }
    body = json.dumps(payload).encode()
    result = adapter.parse_callback(CallbackRequest(headers=fake.sign(ref.id, body), body=body))
    assert result is not None
    assert result.verified
    assert result.status is not None
    assert isinstance(result.status.error, UpstreamContentPolicy)


async def test_jwks_option_inline(http: httpx.AsyncClient) -> None:
    fake = FalFake()
    ctx = make_ctx(http, "https://queue.fal.run", jwks=json.dumps(fake.jwks()))
    adapter = FalAdapter(ctx)
    assert adapter.jwks_url == "https://rest.alpha.fal.ai/.well-known/jwks.json"
    body = json.dumps({"request_id": "r1", "status": "OK", "payload": {"video": {"url": "u"}}}).encode()
    result = adapter.parse_callback(CallbackRequest(headers=fake.sign("r1", body), body=body))
    assert result is not None
    assert result.verified
    assert len(parse_jwks({"keys": [{"kty": "RSA"}, *fake.jwks()["keys"]]})) == 1


async def test_unknown_status_word_is_running() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "WARMING_UP"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = FalAdapter(make_ctx(client, "http://fal.test"))
        ref = UpstreamRef(id="r1", state={"endpoint": "fal-ai/x/y"})
        status = await adapter.poll(ref)
    assert status.state == "running"
    assert status.raw_status == "WARMING_UP"


@pytest.mark.parametrize(
    "endpoint", ["fal-ai/wan-25-preview/text-to-video", "fal-ai/wan-25-preview/image-to-video"]
)
async def test_wan_25_takes_apiframes_audio_url_as_audio_url(
    serve_fake: Any, http: httpx.AsyncClient, fake: FalFake, endpoint: str
) -> None:
    # Apiframe's wanParams.audio is a soundtrack URL; fal's Wan 2.5 pages call it audio_url.
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    sound = "https://a.example/voice.mp3"
    images = (ImageInput(url=IMAGE),) if "image" in endpoint else ()
    req = GenerationRequest(model="wan-2.5", prompt="p", images=images, provider_options={"audio": sound})
    await adapter.submit(req, Route("fal", endpoint), ATTEMPT)
    body = fake.requests[0][2]
    assert body["audio_url"] == sound and "audio" not in body
    same = req.model_copy(update={"provider_options": {"audio": sound, "audio_url": sound}})
    assert adapter.build_input(same, endpoint, Route("fal", endpoint))["audio_url"] == sound
    both = req.model_copy(
        update={"provider_options": {"audio": sound, "audio_url": "https://b.example/x.mp3"}}
    )
    with pytest.raises(UpstreamRejected, match="different URLs"):
        adapter.build_input(both, endpoint, Route("fal", endpoint))


@pytest.mark.parametrize("seconds", [5, 10])
def test_wan_25_is_asked_for_the_length_ordered(seconds: int) -> None:
    # fal's Wan 2.5 makes 5 or 10 s clips; without the field it makes its default 5 s.
    endpoint = "fal-ai/wan-25-preview/text-to-video"
    adapter = FalAdapter(make_ctx(httpx.AsyncClient(), "http://fal.test"))
    req = GenerationRequest(model="wan-2.5", prompt="p", duration_s=seconds)
    assert adapter.build_input(req, endpoint, Route("fal", endpoint))["duration"] == str(seconds)


async def test_other_endpoints_keep_an_audio_option_as_given(
    serve_fake: Any, http: httpx.AsyncClient, fake: FalFake
) -> None:
    adapter = FalAdapter(make_ctx(http, serve_fake(fake)))
    req = GenerationRequest(model="m", prompt="p", provider_options={"audio": "https://a.example/v.mp3"})
    endpoint = "fal-ai/kling-video/v3/pro/text-to-video"
    assert adapter.build_input(req, endpoint, Route("fal", endpoint))["audio"] == "https://a.example/v.mp3"
