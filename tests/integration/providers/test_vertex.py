"""The Vertex AI (Veo) adapter against its fake, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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
from vidgate.providers.vertex import InlineVideoReader, VertexAdapter, api_root
from vidgate.testing.fake import FakeScript, sample_mp4
from vidgate.testing.fakes.vertex import VertexFake

ATTEMPT = SubmitAttempt.first("job-under-test")

ROUTE = Route(provider="vertex", model="veo-3.0-generate-001", image_model="veo-3.0-i2v-001")
MODEL_PATH = "projects/proj-1/locations/us-central1/publishers/google/models/veo-3.0-generate-001"
REQ = GenerationRequest(
    model="veo-3", prompt="a heron in the rain", duration_s=8, resolution="1080P",
    aspect_ratio="9:16", seed=42, audio=False,
)  # fmt: skip


@pytest.fixture
def fake(serve_fake: Any) -> VertexFake:
    fake = VertexFake(api_key="ya29.test-token", script=FakeScript(latency_s=0.2))
    serve_fake(fake)
    return fake


def ctx_for(fake: VertexFake, http: httpx.AsyncClient, **overrides: Any) -> Any:
    options = {"project": "proj-1", "location": "us-central1", "storage_base_url": fake.base_url}
    options.update(overrides.pop("options", {}))
    return make_ctx(http, fake.base_url, **{"api_key": "ya29.test-token", **overrides}, **options)


@pytest.fixture
def adapter(fake: VertexFake, http: httpx.AsyncClient) -> VertexAdapter:
    return VertexAdapter(ctx_for(fake, http))


async def finish(adapter: VertexAdapter, ref: UpstreamRef, within_s: float = 5.0) -> UpstreamStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not (status := await adapter.poll(ref)).terminal:
        assert loop.time() < deadline, "the job did not finish in time"
        await asyncio.sleep(0.05)
    return status


async def test_inline_video_end_to_end(fake: VertexFake, adapter: VertexAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.id.startswith(MODEL_PATH + "/operations/")
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", f"/v1/{MODEL_PATH}:predictLongRunning")
    assert body == {
        "instances": [{"prompt": "a heron in the rain"}],
        "parameters": {
            "aspectRatio": "9:16", "durationSeconds": 8, "resolution": "1080p",
            "seed": 42, "generateAudio": False,
        },
    }  # fmt: skip
    assert fake.seen_headers[0]["authorization"] == "Bearer ya29.test-token"

    status = await finish(adapter, ref)
    assert fake.requests[-1][1] == f"/v1/{MODEL_PATH}:fetchPredictOperation"
    assert fake.requests[-1][2] == {"operationName": ref.id}
    assert status.state == "succeeded"
    (output,) = status.outputs
    assert output.url == f"vertex-inline:{ref.id}#0"  # the base64 is not kept in the record
    data = await collect(adapter.stream_output(output))
    assert data == sample_mp4(fake.script.video_seconds)
    assert_mp4(data)


async def test_gcs_output_end_to_end(fake: VertexFake, http: httpx.AsyncClient) -> None:
    adapter = VertexAdapter(ctx_for(fake, http, options={"storage_uri": "gs://bucket/veo"}))
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert fake.requests[0][2]["parameters"]["storageUri"] == "gs://bucket/veo"
    status = await finish(adapter, ref)
    (output,) = status.outputs
    assert output.url.startswith("gs://bucket/veo/")
    assert output.headers == {}  # the bearer token is added at download time
    assert_mp4(await collect(adapter.stream_output(output)))
    assert fake.seen_headers  # API calls carried the token; the GCS call is checked by the fake


async def test_image_inputs_use_i2v_model_and_gcs_uri(fake: VertexFake, adapter: VertexAdapter) -> None:
    first = "data:image/png;base64," + base64.b64encode(b"png-bytes").decode()
    req = REQ.model_copy(
        update={
            "images": (
                ImageInput(url=first, role="first_frame"),
                ImageInput(url="gs://bucket/last.jpg", role="last_frame"),
            ),
            "provider_options": {"personGeneration": "allow_all", "labels": {"team": "a"}},
        }
    )
    ref = await adapter.submit(req, ROUTE, ATTEMPT)
    assert "/models/veo-3.0-i2v-001/operations/" in ref.id
    _, path, body = fake.requests[0]
    assert path.endswith("/models/veo-3.0-i2v-001:predictLongRunning")
    instance = body["instances"][0]
    assert instance["image"] == {
        "bytesBase64Encoded": base64.b64encode(b"png-bytes").decode(),
        "mimeType": "image/png",
    }
    assert instance["lastFrame"] == {"gcsUri": "gs://bucket/last.jpg", "mimeType": "image/jpeg"}
    assert body["parameters"]["personGeneration"] == "allow_all"
    assert body["labels"] == {"team": "a"}


async def test_service_account_file(fake: VertexFake, http: httpx.AsyncClient, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "proj-1",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "veo@proj-1.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{fake.base_url}/token",
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    ctx = make_ctx(http, fake.base_url, api_key=None, credentials_file=str(path), location="us-central1")
    adapter = VertexAdapter(ctx)  # no project option: it comes from the file
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert ref.id.startswith(MODEL_PATH)
    (grant,) = fake.token_grants
    assert grant["iss"] == "veo@proj-1.iam.gserviceaccount.com"
    assert fake.seen_headers[-1]["authorization"] == "Bearer ya29.test-token"
    assert (await finish(adapter, ref)).state == "succeeded"


async def test_bad_credentials_file(fake: VertexFake, http: httpx.AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    path.write_text("{}")
    adapter = VertexAdapter(make_ctx(http, fake.base_url, api_key=None, credentials_file=str(path)))
    with pytest.raises(UpstreamAuthError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_bad_token(fake: VertexFake, http: httpx.AsyncClient) -> None:
    adapter = VertexAdapter(ctx_for(fake, http, api_key="expired"))
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.status_code == 401
    assert not caught.value.retryable


async def test_failure_reason_surfaces(fake: VertexFake, adapter: VertexAdapter) -> None:
    fake.script.fail_reason = "The prompt could not be processed."
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    assert status.state == "failed"
    assert isinstance(status.error, UpstreamRejected)
    assert status.error.message == "The prompt could not be processed."


async def test_safety_filter_is_content_policy(fake: VertexFake, adapter: VertexAdapter) -> None:
    fake.script.content_policy = True
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    assert isinstance(status.error, UpstreamContentPolicy)


async def test_rate_limit_then_success(fake: VertexFake, adapter: VertexAdapter) -> None:
    fake.script.submit_statuses = [429]
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    assert caught.value.retryable
    assert (await adapter.submit(REQ, ROUTE, ATTEMPT)).id


async def test_server_errors_are_retryable(fake: VertexFake, adapter: VertexAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.poll_statuses = [503]
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.poll(ref)
    assert caught.value.retryable


async def test_timeout(fake: VertexFake, http: httpx.AsyncClient) -> None:
    fake.script.delay_s = 0.5
    adapter = VertexAdapter(ctx_for(fake, http, timeout_s=0.1))
    with pytest.raises(UpstreamTimeout):
        await adapter.submit(REQ, ROUTE, ATTEMPT)


async def test_malformed_and_unknown_shapes(fake: VertexFake, adapter: VertexAdapter) -> None:
    ref = await adapter.submit(REQ, ROUTE, ATTEMPT)
    fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)
    fake.script.malformed, fake.script.unknown_shape = False, True
    with pytest.raises(UpstreamProtocolError):
        await adapter.submit(REQ, ROUTE, ATTEMPT)
    with pytest.raises(UpstreamProtocolError):
        await adapter.poll(ref)


@pytest.mark.parametrize("storage", ["gs://bucket/veo", None])
async def test_output_expired(fake: VertexFake, http: httpx.AsyncClient, storage: str | None) -> None:
    options = {"storage_uri": storage} if storage else {}
    adapter = VertexAdapter(ctx_for(fake, http, options=options))
    fake.script.output_ttl_s = 0
    status = await finish(adapter, await adapter.submit(REQ, ROUTE, ATTEMPT))
    await asyncio.sleep(0.01)
    with pytest.raises(UpstreamOutputExpired):
        await collect(adapter.stream_output(status.outputs[0]))


def test_inline_reader_decodes_across_tiny_chunks() -> None:
    video = bytes(range(256)) * 40
    encoded = base64.b64encode(video).decode().replace("/", "\\/")  # JSON may escape '/'
    body = (
        json.dumps({"name": "op", "done": True}).encode()[:-1]
        + (
            ', "response": {"videos": [{"bytesBase64Encoded": "QUJD", "mimeType": "video/mp4"},'
            ' {"mimeType": "video/mp4", "bytesBase64Encoded" : "' + encoded + '"}]}}'
        ).encode()
    )
    for size in (1, 3, 7, 4096):
        reader = InlineVideoReader(index=1)
        out = b"".join(piece for i in range(0, len(body), size) for piece in reader.feed(body[i : i + size]))
        reader.close()
        assert out == video


def test_inline_reader_reports_missing_and_truncated() -> None:
    reader = InlineVideoReader(index=0)
    reader.feed(b'{"name": "op", "done": true}')
    with pytest.raises(UpstreamOutputExpired):
        reader.close()
    reader = InlineVideoReader(index=0)
    reader.feed(b'{"bytesBase64Encoded": "QUJD')
    with pytest.raises(UpstreamProtocolError):
        reader.close()


def test_regional_host() -> None:
    google = "https://us-central1-aiplatform.googleapis.com"
    assert api_root(google, "europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert api_root(google, "global") == "https://aiplatform.googleapis.com"
    assert api_root("http://127.0.0.1:9999/", "europe-west4") == "http://127.0.0.1:9999"


async def test_no_callbacks_and_no_cancel(adapter: VertexAdapter) -> None:
    assert {Capability.SEED, Capability.AUDIO} <= adapter.capabilities
    assert Capability.CANCEL not in adapter.capabilities
    assert adapter.parse_callback(CallbackRequest(headers={}, body=b"{}")) is None
