"""The providers' official Python SDKs against vidgate's fakes (issue 13).

Each SDK runs its own generation flow (create, poll, download) against the fake on a
real port, so the fake is held to the real client and not only to our adapter. Then
the adapter makes the same job and its create request must equal the SDK's: same
path, same fields.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.providers.conftest import assert_mp4, make_ctx
from vidgate.domain.request import GenerationRequest
from vidgate.providers.base import Route, SubmitAttempt
from vidgate.testing.fake import FakeScript, FakeUpstream
from vidgate.testing.fakes.ark import ArkFake
from vidgate.testing.fakes.dashscope import DashscopeFake
from vidgate.testing.fakes.luma import LumaFake
from vidgate.testing.fakes.openai_compat import OpenAICompatFake
from vidgate.testing.fakes.replicate import ReplicateFake
from vidgate.testing.fakes.runway import RunwayFake
from vidgate.testing.server import serve_in_thread

ATTEMPT = SubmitAttempt.first("job-sdk")
PROMPT = "a paper boat on a river"


@pytest.fixture
def served() -> Iterator[Callable[[FakeUpstream], str]]:
    managers: list[Any] = []

    def serve(fake: FakeUpstream) -> str:
        manager = serve_in_thread(fake.app())
        fake.base_url = manager.__enter__()
        managers.append(manager)
        return fake.base_url

    yield serve
    for manager in reversed(managers):
        manager.__exit__(None, None, None)


def until(read: Callable[[], Any], done: Callable[[Any], bool], within_s: float = 10.0) -> Any:
    deadline = time.monotonic() + within_s
    while not done(value := read()):
        assert time.monotonic() < deadline, f"not done in time: {value}"
        time.sleep(0.05)
    return value


def creates(fake: FakeUpstream) -> list[tuple[str, str, dict[str, Any]]]:
    return [r for r in fake.requests if r[0] == "POST"]


def adapter_submit(adapter_cls: Any, base: str, req: GenerationRequest, route: Route) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            await adapter_cls(make_ctx(http, base)).submit(req, route, ATTEMPT)

    asyncio.run(run())


def test_openai_sdk(served: Callable[[FakeUpstream], str]) -> None:
    from openai import OpenAI

    from vidgate.providers.openai_compat import OpenAICompatAdapter

    fake = OpenAICompatFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    with OpenAI(api_key="test-key", base_url=f"{base}/v1", max_retries=0) as client:
        video = client.videos.create(model="sora-2", prompt=PROMPT, seconds="8", size="1280x720")
        done = until(lambda: client.videos.retrieve(video.id), lambda v: v.status in ("completed", "failed"))
        assert done.status == "completed"
        assert_mp4(client.videos.download_content(video.id, variant="video").read())
    req = GenerationRequest(
        model="sora-2", prompt=PROMPT, duration_s=8, resolution="720p", aspect_ratio="16:9"
    )
    adapter_submit(OpenAICompatAdapter, base, req, Route("openai", "sora-2"))
    sdk, ours = fake.create_bodies[0], fake.create_bodies[1]
    assert ours == sdk  # same multipart fields, same values
    assert all(h.get("content-type", "").startswith("multipart/form-data") for h in fake.seen_headers[:1])


def test_lumaai_sdk(served: Callable[[FakeUpstream], str]) -> None:
    from lumaai import LumaAI

    from vidgate.providers.luma import LumaAdapter

    fake = LumaFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    client = LumaAI(auth_token="test-key", base_url=f"{base}/dream-machine/v1", max_retries=0)
    generation = client.generations.create(
        model="ray-2", prompt=PROMPT, aspect_ratio="16:9", resolution="720p", duration="5s"
    )
    assert generation.id is not None
    done = until(lambda: client.generations.get(generation.id), lambda g: g.state in ("completed", "failed"))
    assert done.state == "completed" and done.assets and done.assets.video
    assert_mp4(httpx.get(done.assets.video).content)
    req = GenerationRequest(
        model="ray-2", prompt=PROMPT, duration_s=5, resolution="720p", aspect_ratio="16:9"
    )
    adapter_submit(LumaAdapter, base, req, Route("luma", "ray-2"))
    (sdk_method, sdk_path, sdk_body), (method, path, body) = creates(fake)
    assert (method, path) == (sdk_method, sdk_path) == ("POST", "/dream-machine/v1/generations/video")
    assert body == sdk_body


def test_runwayml_sdk(served: Callable[[FakeUpstream], str]) -> None:
    from runwayml import RunwayML

    from vidgate.providers.runway import RunwayAdapter

    fake = RunwayFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    client = RunwayML(api_key="test-key", base_url=base, max_retries=0)
    task = client.text_to_video.create(model="gen4.5", prompt_text=PROMPT, ratio="1280:720", duration=5)
    done = until(lambda: client.tasks.retrieve(task.id), lambda t: t.status in ("SUCCEEDED", "FAILED"))
    assert done.status == "SUCCEEDED"
    assert_mp4(httpx.get(done.output[0]).content)
    req = GenerationRequest(
        model="gen4.5", prompt=PROMPT, duration_s=5, resolution="720p", aspect_ratio="16:9"
    )
    adapter_submit(RunwayAdapter, base, req, Route("runway", "gen4.5"))
    (_, sdk_path, sdk_body), (_, path, body) = creates(fake)
    assert path == sdk_path == "/v1/text_to_video"
    assert body == sdk_body


def test_replicate_sdk(served: Callable[[FakeUpstream], str]) -> None:
    import replicate

    from vidgate.providers.replicate import ReplicateAdapter

    fake = ReplicateFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    client = replicate.Client(api_token="test-key", base_url=base)
    inputs = {"prompt": PROMPT, "duration": 5, "aspect_ratio": "16:9"}
    prediction = client.predictions.create(model="kwaivgi/kling-v2.6", input=inputs)

    def reload() -> Any:
        prediction.reload()
        return prediction

    try:
        done = until(reload, lambda p: p.status in ("succeeded", "failed", "canceled"))
    finally:
        client._client.close()  # the SDK offers no close() of its own
    assert done.status == "succeeded"
    output = done.output if isinstance(done.output, str) else done.output[0]
    assert_mp4(httpx.get(str(output)).content)
    req = GenerationRequest(model="kling-2.6", prompt=PROMPT, duration_s=5, aspect_ratio="16:9")
    adapter_submit(ReplicateAdapter, base, req, Route("replicate", "kwaivgi/kling-v2.6"))
    (_, sdk_path, sdk_body), (_, path, body) = creates(fake)
    assert path == sdk_path == "/v1/models/kwaivgi/kling-v2.6/predictions"
    assert body["input"] == sdk_body["input"]


def test_dashscope_sdk(served: Callable[[FakeUpstream], str], monkeypatch: pytest.MonkeyPatch) -> None:
    import dashscope
    from dashscope import VideoSynthesis

    from vidgate.providers.dashscope import DashscopeAdapter

    fake = DashscopeFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{base}/api/v1")
    started = VideoSynthesis.async_call(
        api_key="test-key", model="wan2.2-t2v-plus", prompt=PROMPT, size="1280*720", duration=5
    )
    assert started.status_code == 200, started
    done = until(
        lambda: VideoSynthesis.fetch(started, api_key="test-key"),
        lambda r: r.output.task_status in ("SUCCEEDED", "FAILED"),
    )
    assert done.output.task_status == "SUCCEEDED"
    assert_mp4(httpx.get(done.output.video_url).content)
    req = GenerationRequest(
        model="wan-2.2", prompt=PROMPT, duration_s=5, resolution="720p", aspect_ratio="16:9"
    )
    adapter_submit(DashscopeAdapter, base, req, Route("dashscope", "wan2.2-t2v-plus"))
    (_, sdk_path, sdk_body), (_, path, body) = creates(fake)
    assert path == sdk_path
    assert body["model"] == sdk_body["model"] and body["input"]["prompt"] == sdk_body["input"]["prompt"]
    assert {k: body["parameters"][k] for k in ("size", "duration")} == {
        k: sdk_body["parameters"][k] for k in ("size", "duration")
    }


def test_dashscope_sdk_multi_shot_wan26(
    served: Callable[[FakeUpstream], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-shot Wan 2.6 video as the SDK asks for it (``shot_type="multi"`` with
    ``prompt_extend=True``), and as the adapter asks for it from the ``shot_type`` option."""
    import dashscope
    from dashscope import VideoSynthesis

    from vidgate.providers.dashscope import DashscopeAdapter

    fake = DashscopeFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    monkeypatch.setattr(dashscope, "base_http_api_url", f"{base}/api/v1")
    started = VideoSynthesis.async_call(
        api_key="test-key",
        model="wan2.6-t2v",
        prompt=PROMPT,
        size="1280*720",
        duration=10,
        prompt_extend=True,
        shot_type="multi",
    )
    assert started.status_code == 200, started
    done = until(
        lambda: VideoSynthesis.fetch(started, api_key="test-key"),
        lambda r: r.output.task_status in ("SUCCEEDED", "FAILED"),
    )
    assert done.output.task_status == "SUCCEEDED"
    assert_mp4(httpx.get(done.output.video_url).content)
    req = GenerationRequest(
        model="wan-2.6",
        prompt=PROMPT,
        duration_s=10,
        resolution="720p",
        aspect_ratio="16:9",
        options={"shot_type": "multi"},
    )
    adapter_submit(DashscopeAdapter, base, req, Route("dashscope", "wan2.6-t2v", image_model="wan2.6-i2v"))
    (_, sdk_path, sdk_body), (_, path, body) = creates(fake)
    assert path == sdk_path
    assert body["model"] == sdk_body["model"] == "wan2.6-t2v"
    assert body["parameters"] == sdk_body["parameters"]  # size, duration, prompt_extend, shot_type
    assert sdk_body["parameters"]["shot_type"] == "multi"


def test_fal_client_sdk(served: Callable[[FakeUpstream], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """fal's queue flow: submit, status, result. ``fal_client`` has no base-URL option: the
    queue URL is built from ``FAL_QUEUE_RUN_HOST`` (https only) into the module constant
    ``QUEUE_URL_FORMAT`` at import, so that constant is pointed at the fake."""
    import fal_client
    import fal_client.client

    from vidgate.providers.fal import FalAdapter
    from vidgate.testing.fakes.fal import FalFake

    fake = FalFake(api_key="test-key", script=FakeScript(latency_s=0.3))
    base = served(fake)
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{base}/")
    endpoint = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
    arguments = {"prompt": PROMPT, "duration": "5", "aspect_ratio": "16:9", "negative_prompt": "blur"}
    client = fal_client.SyncClient(key="test-key")
    handle = client.submit(endpoint, arguments, webhook_url="https://gw.example/callbacks/fal?job=job-sdk")
    try:
        until(lambda: handle.status(with_logs=True), lambda s: isinstance(s, fal_client.Completed))
        result = handle.get()
    finally:
        client._client.close()  # the SDK's SyncClient has no close() of its own
    assert_mp4(httpx.get(result["video"]["url"]).content)

    req = GenerationRequest(
        model="kling-2.5", prompt=PROMPT, duration_s=5, aspect_ratio="16:9", negative_prompt="blur"
    )

    async def ours() -> None:
        async with httpx.AsyncClient() as http:
            ctx = make_ctx(http, base, callback_url="https://gw.example/callbacks/fal")
            adapter = FalAdapter(ctx)
            ref = await adapter.submit(req, Route("fal", endpoint), ATTEMPT)
            assert (await adapter.poll(ref)).state in ("queued", "running", "succeeded")

    asyncio.run(ours())
    sdk_create, our_create = creates(fake)
    assert our_create == sdk_create  # same path, same model input
    assert sdk_create[1] == f"/{endpoint}"
    ids = list(fake.jobs)

    def shape(path: str) -> str:
        return path.replace(ids[0], "{id}").replace(ids[1], "{id}")

    gets = [shape(p) for m, p, _ in fake.requests if m == "GET"]
    status = "/fal-ai/kling-video/requests/{id}/status"  # the app id only: the sub-path is dropped
    assert gets[0] == gets[-1] == status  # the SDK's first status call, and our poll
    assert "/fal-ai/kling-video/requests/{id}" in gets  # the SDK's result call
    auth = {h.get("authorization") for h in fake.seen_headers}
    assert auth == {"Key test-key"}  # fal's own scheme, from the SDK and from us alike
    submits = [h for h in fake.requests if h[0] == "POST"]
    assert len(submits) == 2
    webhooks = [job.callback_url for job in fake.jobs.values()]
    assert webhooks == ["https://gw.example/callbacks/fal?job=job-sdk"] * 2  # the same query shape


def test_google_genai_sdk_veo_on_vertex(served: Callable[[FakeUpstream], str]) -> None:
    """Veo as the ``google-genai`` SDK makes it: ``generate_videos`` and ``operations.get``
    until done, in Vertex mode (the only mode in which this SDK generates videos now: in
    Gemini Developer API mode it raises "only supported in Gemini Enterprise Agent Platform
    mode"). Pointed at the fake with the SDK's documented
    ``http_options=HttpOptions(base_url=..., api_version="v1")``, with a ready OAuth2 token
    as its credentials."""
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    from vidgate.providers.vertex import VertexAdapter
    from vidgate.testing.fakes.vertex import VertexFake

    fake = VertexFake(api_key="test-key", script=FakeScript(latency_s=0.3))
    base = served(fake)
    client = genai.Client(
        vertexai=True,
        project="proj",
        location="us-central1",
        credentials=Credentials(token="test-key"),
        http_options=types.HttpOptions(base_url=base, api_version="v1"),
    )
    model = "veo-3.0-generate-001"
    config = types.GenerateVideosConfig(
        aspect_ratio="16:9", resolution="720p", duration_seconds=8, negative_prompt="blur", seed=7
    )
    source = types.GenerateVideosSource(prompt=PROMPT)
    with client:
        operation = client.models.generate_videos(model=model, source=source, config=config)
        done = until(lambda: client.operations.get(operation), lambda op: bool(op.done))
    assert done.error is None and done.response and done.response.generated_videos
    video = done.response.generated_videos[0].video
    assert video is not None and video.video_bytes
    assert_mp4(video.video_bytes)

    req = GenerationRequest(
        model="veo-3",
        prompt=PROMPT,
        duration_s=8,
        resolution="720p",
        aspect_ratio="16:9",
        negative_prompt="blur",
        seed=7,
    )

    async def ours() -> None:
        async with httpx.AsyncClient() as http:
            ctx = make_ctx(http, base, project="proj", location="us-central1")
            adapter = VertexAdapter(ctx)
            ref = await adapter.submit(req, Route("vertex", model), ATTEMPT)
            assert (await adapter.poll(ref)).state in ("queued", "running", "succeeded")

    asyncio.run(ours())
    posts = creates(fake)
    model_path = f"/v1/projects/proj/locations/us-central1/publishers/google/models/{model}"
    sdk_create, our_create = (r for r in posts if r[1].endswith(":predictLongRunning"))
    assert sdk_create[1] == our_create[1] == f"{model_path}:predictLongRunning"
    assert our_create[2] == sdk_create[2]  # the same instances and parameters
    fetches = [r for r in posts if r[1].endswith(":fetchPredictOperation")]
    sdk_fetch, our_fetch = fetches[0], fetches[-1]  # the SDK's first poll, and ours
    assert sdk_fetch[1] == our_fetch[1] == f"{model_path}:fetchPredictOperation"
    assert set(our_fetch[2]) == set(sdk_fetch[2]) == {"operationName"}
    assert {h.get("authorization") for h in fake.seen_headers} == {"Bearer test-key"}


def test_byteplus_ark_sdk(served: Callable[[FakeUpstream], str]) -> None:
    """Seedance as BytePlus's own SDK (``byteplus-python-sdk-v2[ark]``, module
    ``byteplussdkarkruntime``) makes it: ``content_generation.tasks.create`` with the
    settings as top-level fields, ``tasks.get`` until done, then the video URL. The SDK
    sends every argument it was not given as ``null``: the fake reads those as absent,
    and the adapter, which leaves them out, must send the rest exactly as the SDK does."""
    from byteplussdkarkruntime import Ark

    from vidgate.domain.request import ImageInput
    from vidgate.providers.ark import ArkAdapter

    fake = ArkFake(script=FakeScript(latency_s=0.3))
    base = served(fake)
    image = "https://img.example/first.png"
    client = Ark(base_url=f"{base}/api/v3", api_key="test-key", max_retries=0)
    try:
        t2v = client.content_generation.tasks.create(
            model="seedance-1-0-pro-250528",
            content=[{"type": "text", "text": PROMPT}],
            resolution="720p",
            ratio="16:9",
            duration=5,
            seed=7,
        )
        i2v = client.content_generation.tasks.create(
            model="seedance-1-0-lite-i2v-250428",
            content=[
                {"type": "text", "text": PROMPT},
                {"type": "image_url", "image_url": {"url": image}, "role": "first_frame"},
            ],
            resolution="480p",
            duration=10,
        )
        for task in (t2v, i2v):
            done = until(
                lambda task=task: client.content_generation.tasks.get(task_id=task.id),
                lambda t: t.status in ("succeeded", "failed"),
            )
            assert done.status == "succeeded"
            assert_mp4(httpx.get(done.content.video_url).content)
    finally:
        client.close()

    t2v_req = GenerationRequest(
        model="seedance-1-pro", prompt=PROMPT, duration_s=5, resolution="720p", aspect_ratio="16:9", seed=7
    )
    adapter_submit(ArkAdapter, base, t2v_req, Route("ark", "seedance-1-0-pro-250528"))
    i2v_req = GenerationRequest(
        model="seedance-1-lite",
        prompt=PROMPT,
        duration_s=10,
        resolution="480p",
        images=(ImageInput(url=image, role="first_frame"),),
    )
    lite = Route("ark", "seedance-1-0-lite-t2v-250428", image_model="seedance-1-0-lite-i2v-250428")
    adapter_submit(ArkAdapter, base, i2v_req, lite)
    sdk_t2v, sdk_i2v, our_t2v, our_i2v = creates(fake)
    for (_, sdk_path, sdk_body), (_, path, body) in ((sdk_t2v, our_t2v), (sdk_i2v, our_i2v)):
        assert path == sdk_path == "/api/v3/contents/generations/tasks"
        assert body == {name: value for name, value in sdk_body.items() if value is not None}
    assert our_i2v[2]["model"] == "seedance-1-0-lite-i2v-250428"
    assert {h.get("authorization") for h in fake.seen_headers} == {"Bearer test-key"}
