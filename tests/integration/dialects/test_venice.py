"""The Venice dialect through the whole app: spec section 2.9, cases 1-17, plus the
failure paths of retrieve, the balance header and the native read of a Venice job."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Gateway, auth
from vidgate.api.dialects import venice
from vidgate.config import Settings
from vidgate.errors import RateLimited
from vidgate.ids import job_id_from_uuid
from vidgate.runtime.app import create_app

API = "/venice/api/v1"
QUEUE = f"{API}/video/queue"
RETRIEVE = f"{API}/video/retrieve"
COMPLETE = f"{API}/video/complete"
QUOTE = f"{API}/video/quote"
T2V = "wan-2.5-preview-text-to-video"
I2V = "wan-2.5-preview-image-to-video"
KLING = "kling-2.6-pro-text-to-video"
IMAGE = "https://example.com/cat.png"
BASE = {"model": T2V, "prompt": "x", "duration": "5s", "resolution": "720p", "aspect_ratio": "16:9"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"url_allowlist": "example.com"})


async def queue(gateway: Gateway, key: str, body: dict[str, Any]) -> str:
    response = await gateway.client.post(QUEUE, headers=auth(key), json=body)
    assert response.status_code == 200, response.text
    queue_id: str = response.json()["queue_id"]
    return queue_id


async def retrieve(gateway: Gateway, key: str, body: dict[str, Any]) -> httpx.Response:
    return await gateway.client.post(RETRIEVE, headers=auth(key), json=body)


async def wait_done(
    gateway: Gateway, key: str, model: str, queue_id: str, *, timeout_s: float = 30.0, **extra: Any
) -> httpx.Response:
    """Poll retrieve until it stops answering JSON PROCESSING."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await retrieve(gateway, key, {"model": model, "queue_id": queue_id, **extra})
        processing = response.status_code == 200 and response.headers["content-type"].startswith(
            "application/json"
        )
        if not processing:
            return response
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{queue_id} did not finish: {response.text}")
        await asyncio.sleep(0.05)


async def balance(gateway: Gateway, key: str) -> tuple[int, int]:
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    return account["balance_micros"], account["held_micros"]


def assert_detailed(response: httpx.Response, field: str | None) -> dict[str, Any]:
    """A 400 DetailedError whose zod tree has errors at ``field`` (None: the top level)."""
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "Invalid request parameters" and isinstance(body["issues"], list)
    node = body["details"] if field is None else body["details"][field]
    assert node["_errors"] and all(isinstance(m, str) for m in node["_errors"]), body
    return body


def assert_standard(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body


def jpeg_data_url() -> str:
    image = io.BytesIO()
    Image.new("RGB", (64, 36), (20, 120, 200)).save(image, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(image.getvalue()).decode()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Gateway]:
    app = create_app(settings, run_worker=True, env={})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Gateway(app.state.services, client, app.state.runtime)


# ------------------------------------------------------------------ 2.9 cases


async def test_case_01_queue_answers_exactly_model_and_a_uuid(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    response = await gateway.client.post(QUEUE, headers=auth(key), json=BASE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"model", "queue_id"} and body["model"] == T2V
    assert str(uuid.UUID(body["queue_id"])) == body["queue_id"]
    assert response.headers["x-venice-balance-usd"] == "10.00"  # the balance before the request


async def test_case_02_retrieve_while_running_is_json_processing(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:hang"})
    response = await retrieve(gateway, key, {"model": T2V, "queue_id": queue_id})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "PROCESSING" and set(body) == {
        "status",
        "average_execution_time",
        "execution_duration",
    }
    assert isinstance(body["average_execution_time"], int) and isinstance(body["execution_duration"], int)
    assert body["average_execution_time"] >= body["execution_duration"] >= 0


async def test_case_03_retrieve_after_completion_is_the_mp4(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, BASE)
    response = await wait_done(gateway, key, T2V, queue_id)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    again = await retrieve(gateway, key, {"model": T2V, "queue_id": queue_id})
    assert again.headers["content-type"] == "video/mp4"  # kept until deleted


async def test_case_04_delete_media_on_completion_serves_once(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, BASE)
    response = await wait_done(gateway, key, T2V, queue_id, delete_media_on_completion=True)
    assert response.headers["content-type"] == "video/mp4" and response.content[4:8] == b"ftyp"
    gone = await retrieve(gateway, key, {"model": T2V, "queue_id": queue_id})
    assert_standard(gone, 404)
    stored = await gateway.services.storage.size(f"videos/{job_id_from_uuid(queue_id)}/video.mp4")
    assert stored is None


async def test_case_05_complete_deletes_the_media(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, BASE)
    assert (await wait_done(gateway, key, T2V, queue_id)).headers["content-type"] == "video/mp4"
    done = await gateway.client.post(COMPLETE, headers=auth(key), json={"model": T2V, "queue_id": queue_id})
    assert done.status_code == 200 and done.json() == {"success": True}
    assert_standard(await retrieve(gateway, key, {"model": T2V, "queue_id": queue_id}), 404)


async def test_case_06_unknown_queue_id_or_wrong_model_is_404(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:hang"})
    for body in (
        {"model": T2V, "queue_id": str(uuid.uuid4())},
        {"model": I2V, "queue_id": queue_id},
        {"model": T2V, "queue_id": "not-a-uuid"},
    ):
        error = assert_standard(await retrieve(gateway, key, body), 404)
        assert error["error"].startswith("Media could not be found")
    theirs, _ = await gateway.account("someone-else")
    assert_standard(await retrieve(gateway, theirs, {"model": T2V, "queue_id": queue_id}), 404)


@pytest.mark.parametrize("duration", [5, "7s", "5", "auto", None])
async def test_case_07_duration_must_be_one_of_the_models_strings(gateway: Gateway, duration: Any) -> None:
    key, _ = await gateway.account()
    body = (
        {**BASE, "duration": duration}
        if duration is not None
        else {k: v for k, v in BASE.items() if k != "duration"}
    )
    assert_detailed(await gateway.client.post(QUEUE, headers=auth(key), json=body), "duration")


async def test_case_08_audio_and_aspect_ratio_follow_the_models_constraints(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    audio = await gateway.client.post(QUEUE, headers=auth(key), json={**BASE, "audio": True})
    assert_detailed(audio, "audio")
    i2v = {"model": I2V, "prompt": "x", "duration": "5s", "image_url": IMAGE}
    ratio = await gateway.client.post(QUEUE, headers=auth(key), json={**i2v, "aspect_ratio": "16:9"})
    assert_detailed(ratio, "aspect_ratio")
    missing_ratio = {k: v for k, v in BASE.items() if k != "aspect_ratio"}
    assert_detailed(await gateway.client.post(QUEUE, headers=auth(key), json=missing_ratio), "aspect_ratio")
    kling = {
        "model": KLING,
        "prompt": "simulate:hang",
        "duration": "10s",
        "aspect_ratio": "1:1",
        "audio": False,
    }
    assert (await gateway.client.post(QUEUE, headers=auth(key), json=kling)).status_code == 200


async def test_case_09_image_to_video_needs_an_image_url_and_takes_data_urls(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    body = {"model": I2V, "prompt": "it moves", "duration": "5s"}
    assert_detailed(await gateway.client.post(QUEUE, headers=auth(key), json=body), "image_url")
    data_url = jpeg_data_url()
    queue_id = await queue(gateway, key, {**body, "image_url": data_url})
    job_id = job_id_from_uuid(queue_id)
    assert job_id is not None
    assert (await gateway.services.jobs.get(principal, job_id)).request.first_frame == data_url
    bad = await gateway.client.post(QUEUE, headers=auth(key), json={**body, "image_url": "ftp://x/y.png"})
    assert_detailed(bad, "image_url")


async def test_case_10_unknown_keys_are_refused(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:hang"})
    reference = {"model": T2V, "queue_id": queue_id}
    for path in (RETRIEVE, COMPLETE):
        answer = await gateway.client.post(path, headers=auth(key), json={**reference, "foo": 1})
        assert "'foo'" in assert_detailed(answer, None)["details"]["_errors"][0]
    extra_on_complete = {**reference, "delete_media_on_completion": True}
    assert_detailed(await gateway.client.post(COMPLETE, headers=auth(key), json=extra_on_complete), None)
    assert_detailed(await gateway.client.post(QUEUE, headers=auth(key), json={**BASE, "foo": 1}), None)
    assert_detailed(await retrieve(gateway, key, {"model": T2V}), "queue_id")


async def test_case_11_quote_prices_without_creating_or_charging(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    body = {"model": T2V, "duration": "10s", "resolution": "1080p"}
    response = await gateway.client.post(QUOTE, headers=auth(key), json=body)
    assert response.status_code == 200 and response.json() == {"quote": 1.68}  # 10 s x $0.168
    anonymous = await gateway.client.post(
        QUOTE, json={"model": I2V, "duration": "5s", "aspect_ratio": "16:9"}
    )
    assert anonymous.status_code == 200 and anonymous.json() == {"quote": 0.56}
    assert (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"] == []
    assert await balance(gateway, key) == (10_000_000, 0)
    assert_detailed(await gateway.client.post(QUOTE, json={"model": T2V, "duration": "7s"}), "duration")
    assert_detailed(await gateway.client.post(QUOTE, json={**body, "prompt": "x"}), None)


async def test_case_12_queue_with_a_zero_balance_is_402(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="0")
    error = assert_standard(await gateway.client.post(QUEUE, headers=auth(key), json=BASE), 402)
    assert error["error"].startswith("Insufficient USD or Diem balance")


async def test_case_13_queue_without_authorization_is_401(gateway: Gateway) -> None:
    assert_standard(await gateway.client.post(QUEUE, json=BASE), 401)
    assert_standard(await gateway.client.post(QUEUE, headers=auth("vg_test_wrong"), json=BASE), 401)


async def test_case_14_models_of_type_video(gateway: Gateway) -> None:
    response = await gateway.client.get(f"{API}/models", params={"type": "video"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["type"] == "video" and body["data"]
    keys = {"aspect_ratios", "resolutions", "durations", "model_type", "audio", "audio_configurable"}
    for model in body["data"]:
        assert model["type"] == "video" and model["object"] == "model"
        assert keys <= set(model["model_spec"]["constraints"])
    by_id = {m["id"]: m["model_spec"]["constraints"] for m in body["data"]}
    assert by_id[T2V]["durations"] == ["5s", "10s"] and by_id[I2V]["aspect_ratios"] == []
    assert by_id[I2V]["model_type"] == "image-to-video" and by_id[KLING]["resolutions"] == []
    assert by_id[KLING]["audio_configurable"] is True and by_id[T2V]["audio_configurable"] is False
    text = (await gateway.client.get(f"{API}/models")).json()
    assert text["type"] == "text" and text["data"] == []
    assert_detailed(await gateway.client.get(f"{API}/models", params={"type": "films"}), "type")


async def test_case_15_a_prompt_over_the_character_limit_is_400(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    long = await gateway.client.post(QUEUE, headers=auth(key), json={**BASE, "prompt": "x" * 2501})
    assert_detailed(long, "prompt")
    assert_detailed(
        await gateway.client.post(QUEUE, headers=auth(key), json={**BASE, "prompt": ""}), "prompt"
    )


async def test_case_16_a_body_over_the_size_limit_is_413(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    huge = json.dumps({**BASE, "image_url": "data:image/png;base64," + "A" * (26 * 1024 * 1024)})
    response = await gateway.client.post(
        QUEUE, headers={**auth(key), "Content-Type": "application/json"}, content=huge
    )
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "PAYLOAD_TOO_LARGE" and isinstance(body["error"], str)


async def test_case_17_the_41st_queue_call_in_a_minute_is_429(settings: Settings) -> None:
    async with running(settings.model_copy(update={"rate_limit_per_minute": 1000})) as gw:
        key, _ = await gw.account()
        invalid = {**BASE, "duration": "7s"}  # cheap calls: counted, refused, nothing created
        answers = [await gw.client.post(QUEUE, headers=auth(key), json=invalid) for _ in range(41)]
    assert [r.status_code for r in answers] == [400] * 40 + [429]
    assert all("x-ratelimit-remaining-requests" in r.headers for r in answers)
    assert answers[-1].headers["x-ratelimit-remaining-requests"] == "0"
    assert_standard(answers[-1], 429)
    assert int(answers[-1].headers["Retry-After"]) >= 1


def test_case_17_rate_limit_renders_a_standard_error() -> None:
    response = venice.render_error(
        RateLimited("slow down", retry_after_s=5, limit=40, reset_at=1_800_000_000)
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "5"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    body = json.loads(bytes(response.body))
    assert body == {"error": "slow down", "code": "RATE_LIMIT_EXCEEDED"}


# ------------------------------------------------------------------ beyond the numbered cases


async def test_a_failed_job_is_a_500_on_retrieve_and_refunded(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    before = await balance(gateway, key)
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:fail"})
    assert (await balance(gateway, key))[1] == 560_000  # charged (held) at queue time
    response = await wait_done(gateway, key, T2V, queue_id)
    body = assert_standard(response, 500)
    assert "simulate:fail" in body["error"] and body["credits_refunded"] is True
    assert await balance(gateway, key) == before


async def test_a_content_policy_refusal_is_a_422_on_retrieve(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:policy"})
    response = await wait_done(gateway, key, T2V, queue_id)
    assert response.status_code == 422, response.text
    body = response.json()
    # Venice's current ProviderContentPolicyError, with the seed-era fields kept beside it.
    assert body["error"]["type"] == "provider_content_policy"
    assert body["error"]["credits_refunded"] is True and "refunded" in body["error"]["message"]
    assert body["credits_refunded"] is True and body["code"] == "CONTENT_POLICY_VIOLATION"
    assert await balance(gateway, key) == (10_000_000, 0)


async def test_a_venice_job_reads_in_the_native_api(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, {**BASE, "duration": "5s", "resolution": "480p"})
    await wait_done(gateway, key, T2V, queue_id)
    job_id = job_id_from_uuid(queue_id)
    native = (await gateway.client.get(f"/v1/videos/{job_id}", headers=auth(key))).json()
    assert native["dialect"] == "venice" and native["status"] == "completed"
    assert native["resolution"] == "480p" and native["duration"] == 5
    assert native["cost"]["charged"] == "0.28"  # 5 s x $0.056 at 480p


async def test_complete_on_a_running_job_is_400_and_keeps_it(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:hang"})
    reference = {"model": T2V, "queue_id": queue_id}
    assert_detailed(await gateway.client.post(COMPLETE, headers=auth(key), json=reference), "queue_id")
    assert (await retrieve(gateway, key, reference)).json()["status"] == "PROCESSING"


async def test_non_json_content_type_is_415_and_unknown_routes_404(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    form = await gateway.client.post(QUEUE, headers=auth(key), data={"model": T2V})
    assert assert_standard(form, 415)["code"] == "INVALID_CONTENT_TYPE"
    assert_standard(await gateway.client.get(f"{API}/nope", headers=auth(key)), 404)
    assert_detailed(await gateway.client.post(QUEUE, headers=auth(key), content=b"{oops"), None)


async def test_the_default_negative_prompt_is_applied(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    queue_id = await queue(gateway, key, {**BASE, "prompt": "simulate:hang"})
    job_id = job_id_from_uuid(queue_id)
    assert job_id is not None
    job = await gateway.services.jobs.get(principal, job_id)
    assert job.request.negative_prompt == "low resolution, error, worst quality, low quality, defects"
