"""The ComfyUI adapter against the ComfyUI fake on a real port."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

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
from vidgate.providers.comfyui import ComfyUIAdapter, frame_size
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.comfyui import FLAGGED, ComfyUIFake

ATTEMPT = SubmitAttempt.first("job-under-test")

LTX = Route("comfyui", "ltx-video-2b-v0.9.5.safetensors")
REQ = GenerationRequest(
    model="ltx",
    prompt="a cat",
    negative_prompt="blurry",
    duration_s=5,
    resolution="720p",
    aspect_ratio="16:9",
    seed=42,
)
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()

# A workflow without placeholders: injected by its shape.
PLAIN = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "wan.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "old", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["1", 1]}},
    "4": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"length": 33, "width": 832}},
    "5": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["1", 0],
            "seed": 1,
            "positive": ["2", 0],
            "negative": ["3", 0],
            "latent_image": ["4", 0],
        },
    },
    "6": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["5", 0], "frame_rate": 16}},
}
I2V = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "{{image}}"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "cinematic, {{prompt}}"}},
    "3": {"class_type": "SaveVideo", "inputs": {"video": ["1", 0], "filename_prefix": "x"}},
}


@pytest.fixture
def fake() -> ComfyUIFake:
    return ComfyUIFake(script=FakeScript(latency_s=0.2))


async def run_to_end(adapter: ComfyUIAdapter, ref: UpstreamRef, limit_s: float = 5.0) -> list[UpstreamStatus]:
    """Poll until terminal in a bounded loop; every status seen, last one terminal."""
    seen: list[UpstreamStatus] = []
    deadline = time.monotonic() + limit_s
    while not (seen and seen[-1].terminal):
        assert time.monotonic() < deadline, f"not terminal in {limit_s}s: {seen[-1:]}"
        if seen:
            await asyncio.sleep(0.03)
        seen.append(await adapter.poll(ref))
    return seen


def graph_sent(fake: ComfyUIFake, index: int = 0) -> dict[str, Any]:
    posts = [body for method, path, body in fake.requests if path == "/prompt"]
    graph: dict[str, Any] = posts[index]["prompt"]
    return graph


async def test_success_with_the_default_workflow(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake
) -> None:
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, LTX, ATTEMPT)
    graph = graph_sent(fake)
    assert graph["1"]["inputs"]["ckpt_name"] == "ltx-video-2b-v0.9.5.safetensors"
    assert graph["3"]["inputs"]["text"] == "a cat"
    assert graph["4"]["inputs"]["text"] == "blurry"
    assert graph["7"]["inputs"]["seed"] == 42
    assert graph["6"]["inputs"] == {"width": 1280, "height": 720, "length": 121, "batch_size": 1}
    assert graph["9"]["inputs"]["fps"] == 24
    assert fake.seen_headers[0]["authorization"] == "Bearer test-key"

    seen = await run_to_end(adapter, ref)
    assert {s.state for s in seen[:-1]} <= {"queued", "running"}
    final = seen[-1]
    assert final.state == "succeeded"
    assert "/view?filename=vidgate_" in final.outputs[0].url
    assert "subfolder=video&type=output" in final.outputs[0].url
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))


async def test_queue_position_and_running(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake
) -> None:
    fake.script.latency_s = 10
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    first = await adapter.submit(REQ, LTX, ATTEMPT)
    second = await adapter.submit(REQ, LTX, SubmitAttempt.first("another-job"))
    status = await adapter.poll(second)
    assert status.state == "queued"
    assert status.queue_position == 1
    fake.jobs[first.id].created -= 5
    assert (await adapter.poll(first)).state == "running"


async def test_inline_and_file_workflows_with_overrides(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake, tmp_path: Path
) -> None:
    base = serve_fake(fake)
    path = tmp_path / "wan.json"
    path.write_text(json.dumps(PLAIN))
    for option in (json.dumps(PLAIN), str(path)):
        adapter = ComfyUIAdapter(make_ctx(http, base, workflow=option))
        req = REQ.model_copy(update={"provider_options": {"5.steps": 12, "fps": 16}})
        ref = await adapter.submit(req, Route("comfyui", "wan", params={"1.ckpt_name": "w.st"}), ATTEMPT)
        assert (await run_to_end(adapter, ref))[-1].state == "succeeded"
    for index in (0, 1):
        graph = graph_sent(fake, index)
        assert graph["2"]["inputs"]["text"] == "a cat"  # traced from KSampler.positive
        assert graph["3"]["inputs"]["text"] == "blurry"  # traced from KSampler.negative
        assert graph["5"]["inputs"]["seed"] == 42
        assert graph["5"]["inputs"]["steps"] == 12
        assert graph["4"]["inputs"]["length"] == 5 * 16 + 1
        assert graph["1"]["inputs"]["ckpt_name"] == "w.st"


async def test_image_is_uploaded_and_injected(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake
) -> None:
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake), user_http=http, workflow=json.dumps(I2V)))
    req = REQ.model_copy(update={"images": (ImageInput(url=PNG),)})
    ref = await adapter.submit(req, LTX, ATTEMPT)
    graph = graph_sent(fake)
    name = graph["1"]["inputs"]["image"]
    assert fake.uploads[name] == b"\x89PNG\r\n\x1a\nfake"
    assert graph["2"]["inputs"]["text"] == "cinematic, a cat"
    assert (await run_to_end(adapter, ref))[-1].state == "succeeded"
    # an http(s) image is downloaded first (here: any bytes the fake serves)
    by_url = REQ.model_copy(update={"images": (ImageInput(url=fake.media_url(fake.jobs[ref.id])),)})
    await adapter.submit(by_url, LTX, ATTEMPT)
    assert fake.uploads[graph_sent(fake, 1)["1"]["inputs"]["image"]][4:8] == b"ftyp"
    missing = REQ.model_copy(update={"images": (ImageInput(url=f"{fake.base_url}/nope.png"),)})
    with pytest.raises(UpstreamRejected, match="answered HTTP 404"):
        await adapter.submit(missing, LTX, ATTEMPT)
    with pytest.raises(UpstreamRejected, match="needs an image"):
        await adapter.submit(REQ, LTX, ATTEMPT)
    plain = ComfyUIAdapter(make_ctx(http, fake.base_url))
    with pytest.raises(UpstreamRejected, match="no image input"):
        await plain.submit(req, LTX, ATTEMPT)


async def test_failure_reason_surfaces(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    fake.script.fail_reason = "Allocation on device 0 would exceed allowed memory"
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, LTX, ATTEMPT)))[-1]
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamRejected)
    assert "would exceed allowed memory" in final.error.message
    assert "KSampler" in final.error.message


async def test_safety_checker_failure_is_a_rejection(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake
) -> None:
    # ComfyUI has no content-policy concept: a safety node's failure is a plain rejection.
    fake.script.content_policy = True
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, LTX, ATTEMPT)))[-1]
    assert isinstance(final.error, UpstreamRejected)
    assert not isinstance(final.error, UpstreamContentPolicy)
    assert FLAGGED in final.error.message


async def test_validation_error_keeps_the_node_error(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake
) -> None:
    broken = {**I2V, "4": {"class_type": "KSampler", "inputs": {"steps": "{{steps}}"}}}
    del broken["1"]
    broken["3"] = {"class_type": "SaveVideo", "inputs": {"video": ["9", 0]}}
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake), workflow=json.dumps(broken)))
    with pytest.raises(UpstreamRejected) as caught:
        await adapter.submit(REQ, LTX, ATTEMPT)
    assert caught.value.status_code == 400
    assert "Prompt outputs failed validation" in caught.value.message
    assert "node" in caught.value.message


async def test_bad_workflow_option(http: httpx.AsyncClient, tmp_path: Path) -> None:
    for option in (str(tmp_path / "missing.json"), '{"nodes": [], "links": []}', "{oops"):
        adapter = ComfyUIAdapter(make_ctx(http, "http://comfy.test", workflow=option))
        with pytest.raises(UpstreamRejected, match="workflow"):
            await adapter.submit(REQ, LTX, ATTEMPT)


async def test_rate_limit_then_success(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    fake.script.submit_statuses = [429]
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, LTX, ATTEMPT)
    assert caught.value.retryable
    assert (await adapter.submit(REQ, LTX, ATTEMPT)).id in fake.jobs


async def test_5xx_is_retryable(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    fake.script.submit_statuses = [500]
    fake.script.poll_statuses = [502]
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.submit(REQ, LTX, ATTEMPT)
    assert caught.value.retryable
    ref = await adapter.submit(REQ, LTX, ATTEMPT)
    with pytest.raises(UpstreamUnavailable):
        await adapter.poll(ref)


async def test_timeout(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    fake.script.delay_s = 0.5
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake), timeout_s=0.1))
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, LTX, ATTEMPT)


async def test_malformed_body(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    fake.script.malformed = True
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, LTX, ATTEMPT)


async def test_unknown_shape(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    ref = await adapter.submit(REQ, LTX, ATTEMPT)
    fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, LTX, ATTEMPT)
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


async def test_bad_api_key(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake), api_key="nope"))
    with pytest.raises(UpstreamAuthError):
        await adapter.submit(REQ, LTX, ATTEMPT)


async def test_no_auth_when_no_key(serve_fake: Any, http: httpx.AsyncClient) -> None:
    fake = ComfyUIFake(api_key="", script=FakeScript(latency_s=0.05))
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake), api_key=None))
    ref = await adapter.submit(REQ, LTX, ATTEMPT)
    assert "authorization" not in fake.seen_headers[0]
    assert (await run_to_end(adapter, ref))[-1].state == "succeeded"


async def test_output_expired(serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake) -> None:
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    final = (await run_to_end(adapter, await adapter.submit(REQ, LTX, ATTEMPT)))[-1]
    fake.script.output_ttl_s = 0
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(final.outputs[0]))


async def test_cancel_pending_and_running(
    serve_fake: Any, http: httpx.AsyncClient, fake: ComfyUIFake
) -> None:
    fake.script.latency_s = 10
    adapter = ComfyUIAdapter(make_ctx(http, serve_fake(fake)))
    running = await adapter.submit(REQ, LTX, ATTEMPT)
    pending = await adapter.submit(REQ, LTX, SubmitAttempt.first("another-job"))
    fake.jobs[running.id].created -= 5
    await adapter.cancel(pending)
    assert fake.requests[-1][:2] == ("POST", "/queue")
    assert fake.requests[-1][2] == {"delete": [pending.id]}
    await adapter.cancel(running)
    assert fake.requests[-1][:2] == ("POST", "/interrupt")
    status = await adapter.poll(running)
    assert status.state == "canceled"
    assert status.raw_status == "interrupted"
    await adapter.cancel(running)  # no longer queued or running: nothing to do


async def test_no_callbacks(http: httpx.AsyncClient) -> None:
    adapter = ComfyUIAdapter(make_ctx(http, "http://comfy.test"))
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"{}")) is None


async def test_unknown_status_word_is_running() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        entry = {"status": {"status_str": "paused", "messages": []}, "outputs": {}}
        return httpx.Response(200, json={"p1": entry})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        adapter = ComfyUIAdapter(make_ctx(client, "http://comfy.test"))
        status = await adapter.poll(UpstreamRef(id="p1"))
    assert status.state == "running"
    assert status.raw_status == "paused"


def test_frame_size() -> None:
    assert frame_size("720p", "16:9") == (1280, 720)
    assert frame_size("720p", "9:16") == (720, 1280)
    assert frame_size(None, None) == (848, 480)
    assert frame_size("1080p", "1:1") == (1080, 1080)
