"""The Gemini (Veo) adapter against its fake, over real sockets."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
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
from vidgate.providers.gemini import GeminiAdapter
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.gemini import GeminiFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="gemini", model="veo-3.1-generate-preview")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
REQ = GenerationRequest(
    model="veo-3.1",
    prompt="a cat on a skateboard",
    negative_prompt="blurry",
    duration_s=8,
    resolution="720p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake(serve_fake: Any) -> GeminiFake:
    fake = GeminiFake(api_key="test-key", script=FakeScript(latency_s=0.2))
    serve_fake(fake)
    return fake


@pytest.fixture
def adapter(fake: GeminiFake, http: httpx.AsyncClient) -> GeminiAdapter:
    return GeminiAdapter(make_ctx(http, fake.base_url))


@pytest.fixture
def image_url() -> Iterator[str]:
    """A PNG on a real port, standing in for a client's image URL."""

    async def png(request: Any) -> Response:
        return Response(PNG, media_type="image/png")

    with serve_in_thread(Starlette(routes=[HttpRoute("/frame.png", png)])) as base:
        yield f"{base}/frame.png"


async def finish(adapter: GeminiAdapter, ref: UpstreamRef, within_s: float = 5.0) -> UpstreamStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not (status := await adapter.poll(ref)).terminal:
        assert loop.time() < deadline, "the job did not finish in time"
        await asyncio.sleep(0.05)
    return status


async def test_text_to_video_end_to_end(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.id.startswith("models/veo-3.1-generate-preview/operations/")
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", "/v1beta/models/veo-3.1-generate-preview:predictLongRunning")
    assert body["instances"] == [{"prompt": "a cat on a skateboard"}]
    assert body["parameters"] == {
        "aspectRatio": "16:9",
        "durationSeconds": 8,
        "resolution": "720p",
        "negativePrompt": "blurry",
    }
    assert fake.seen_headers[0]["x-goog-api-key"] == "test-key"
    assert "authorization" not in fake.seen_headers[0]

    first = await adapter.poll(ref)
    assert first.state == "running"
    status = await finish(adapter, ref)
    assert status.state == "succeeded"
    assert status.raw_status == "done"
    (output,) = status.outputs
    assert "/v1beta/files/" in output.url
    assert "x-goog-api-key" not in output.headers  # the key is added at download time only
    assert_mp4(await collect(adapter.stream_output(output)))


async def test_image_to_video_sends_inline_images(
    fake: GeminiFake, http: httpx.AsyncClient, image_url: str
) -> None:
    adapter = GeminiAdapter(make_ctx(http, fake.base_url, user_http=http))
    first = "data:image/jpeg;base64," + base64.b64encode(b"jpeg-bytes").decode()
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url=first, role="first_frame"),
                ImageInput(url=image_url, role="last_frame"),
                ImageInput(url=image_url, role="reference"),
            ),
            "seed": 7,  # Gemini refuses seed (Vertex-only): it must be left out
            "audio": True,
            "provider_options": {"personGeneration": "allow_adult"},
        }
    )
    route = Route(
        provider="gemini",
        model="veo-t2v",
        image_model="veo-3.1-generate-preview",
        params={"sampleCount": 1},
    )
    await adapter.submit(req, route, ATTEMPT)
    _, path, body = fake.requests[0]
    assert path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    instance = body["instances"][0]
    assert instance["image"] == {
        "bytesBase64Encoded": base64.b64encode(b"jpeg-bytes").decode(),
        "mimeType": "image/jpeg",
    }
    png = {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    assert instance["lastFrame"] == png
    assert instance["referenceImages"] == [{"image": png, "referenceType": "ASSET"}]
    assert "seed" not in body["parameters"]
    assert "generateAudio" not in body["parameters"]
    assert body["parameters"]["personGeneration"] == "allow_adult"
    assert body["parameters"]["sampleCount"] == 1


async def test_gcs_image_is_refused_before_sending(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    req = REQ.model_copy(update={"images": (ImageInput(url="gs://bucket/a.png"),)})
    with pytest.raises(UpstreamRejected, match="inline"):
        await adapter.submit(req, ROUTE, ATTEMPT)
    assert fake.requests == []


async def test_failure_reason_surfaces(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    fake.script.fail_reason = "Unable to generate a video for this request."
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    assert status.state == "failed"
    assert isinstance(status.error, UpstreamRejected)
    assert "Unable to generate" in status.error.message


async def test_safety_filter_is_content_policy(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    fake.script.content_policy = True
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    assert status.state == "failed"
    assert status.raw_status == "filtered"
    assert isinstance(status.error, UpstreamContentPolicy)
    assert "usage guidelines" in status.error.message


async def test_rate_limit_then_success(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert caught.value.status_code == 429
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_errors_are_retryable(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    fake.script.submit_statuses = [503]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [500]
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(fake: GeminiFake, http: httpx.AsyncClient) -> None:
    fake.script.delay_s = 0.5
    adapter = GeminiAdapter(make_ctx(http, fake.base_url, timeout_s=0.1))
    with pytest.raises(UpstreamTimeout) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable


async def test_malformed_body(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_unknown_shape(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


@pytest.mark.parametrize("key", ["wrong-key", None])
async def test_bad_api_key(fake: GeminiFake, http: httpx.AsyncClient, key: str | None) -> None:
    adapter = GeminiAdapter(make_ctx(http, fake.base_url, api_key=key))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert not caught.value.retryable


async def test_missing_key_header_is_refused_by_the_fake(fake: GeminiFake, http: httpx.AsyncClient) -> None:
    url = f"{fake.base_url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    answer = await http.post(url, json={"instances": [{"prompt": "x"}]})
    assert answer.status_code == 403
    assert answer.json()["error"]["status"] == "PERMISSION_DENIED"


async def test_download_needs_the_key(
    fake: GeminiFake, adapter: GeminiAdapter, http: httpx.AsyncClient
) -> None:
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    answer = await http.get(status.outputs[0].url)
    assert answer.status_code == 403


async def test_output_expired(fake: GeminiFake, adapter: GeminiAdapter) -> None:
    fake.script.output_ttl_s = 0
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(status.outputs[0]))


async def test_no_callbacks_and_no_cancel(adapter: GeminiAdapter) -> None:
    assert Capability.CALLBACK not in adapter.capabilities
    assert Capability.CANCEL not in adapter.capabilities
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b'{"name": "x"}')) is None
    with pytest.raises(UpstreamRejected, match="cannot cancel"):  # the shared default
        await adapter.cancel(UpstreamRef(id="models/m/operations/x"))
