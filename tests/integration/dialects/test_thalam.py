"""The Thalam dialect through the whole app: spec section 1.9, cases 1-13, plus the
submit-time 502/504, the failure refund and the native read of a Thalam task."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, auth
from vidgate.api.dialects import thalam
from vidgate.config import Settings
from vidgate.errors import RateLimited
from vidgate.runtime.app import create_app
from vidgate.testing.fakes.fal import FalFake
from vidgate.testing.server import serve_in_thread

SUBMIT = "/thalam/v1/videos/generations"
TASKS = "/thalam/v1/videos/tasks"
PUBLIC = "https://vidgate.example"
IMAGE = "https://example.com/cat.png"
WAN = "alibaba/wan-2.5-t2v-preview"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Served behind TLS (so media URLs are https), with example.com images allowed."""
    return settings.model_copy(update={"public_url": PUBLIC, "url_allowlist": "example.com"})


def tl(key: str) -> dict[str, str]:
    return auth(f"tl-{key}")


async def submit(gateway: Gateway, key: str, body: dict[str, Any]) -> str:
    response = await gateway.client.post(SUBMIT, headers=tl(key), json=body)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def poll(gateway: Gateway, key: str, task_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"{TASKS}/{task_id}", headers=tl(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_done(gateway: Gateway, key: str, task_id: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = await poll(gateway, key, task_id)
        if body["task"]["status"] in ("TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} did not finish: {body}")
        await asyncio.sleep(0.05)


async def balance(gateway: Gateway, key: str) -> tuple[int, int]:
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    return account["balance_micros"], account["held_micros"]


async def ledger(gateway: Gateway, key: str, job_id: str) -> list[dict[str, Any]]:
    response = await gateway.client.get("/v1/account/ledger", params={"job_id": job_id}, headers=auth(key))
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@contextlib.asynccontextmanager
async def running(settings: Settings, env: dict[str, str] | None = None) -> AsyncIterator[Gateway]:
    """A gateway with its own settings (and upstream credentials in ``env``)."""
    app = create_app(settings, run_worker=True, env=env or {})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Gateway(app.state.services, client, app.state.runtime)


# ------------------------------------------------------------------ 1.9 cases


async def test_case_01_submit_answers_a_task_id_and_processing(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": WAN, "prompt": "x", "duration": 5}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task_id", "status"}
    assert isinstance(body["task_id"], str) and body["task_id"]
    assert body["status"] == "processing"


async def test_case_02_poll_while_running(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task_id = await submit(gateway, key, {"model": WAN, "prompt": "simulate:hang", "duration": 5})
    body = await poll(gateway, key, task_id)
    assert body["task"]["status"] in ("TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING")
    assert body["task"]["task_id"] == task_id
    assert body["task"]["reason"] == ""
    assert body["videos"] == []
    assert 0 <= body["task"]["progress_percent"] <= 100


async def test_case_03_success_gives_an_https_mp4_url(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task_id = await submit(gateway, key, {"model": WAN, "prompt": "a desert", "duration": 2})
    body = await wait_done(gateway, key, task_id)
    assert body["task"]["status"] == "TASK_STATUS_SUCCEED", body
    assert body["task"]["reason"] == ""
    url = body["videos"][0]["video_url"]
    assert url.startswith(f"{PUBLIC}/") and ".mp4?" in url
    video = await gateway.client.get(url.removeprefix(PUBLIC))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"


async def test_case_04_failure_is_refunded_in_full(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    before = await balance(gateway, key)
    task_id = await submit(gateway, key, {"model": WAN, "prompt": "simulate:fail", "duration": 10})
    assert (await balance(gateway, key))[1] == 1_000_000  # $0.50 x 10/5 pre-deducted
    body = await wait_done(gateway, key, task_id)
    assert body["task"]["status"] == "TASK_STATUS_FAILED"
    assert "simulate:fail" in body["task"]["reason"]
    assert body["videos"] == []
    entries = {e["kind"]: e["amount_micros"] for e in await ledger(gateway, key, task_id)}
    assert entries == {"hold": -1_000_000, "release": 1_000_000}
    assert await balance(gateway, key) == before


async def test_case_05_i2v_without_image_url_is_400_and_debits_nothing(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    before = await balance(gateway, key)
    response = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": "bytedance/seedance-1.5-pro-i2v", "prompt": "x"}
    )
    error = assert_error(response, 400, "missing_image_url")
    assert error["param"] == "image_url" and error["type"] == "invalid_request_error"
    assert await balance(gateway, key) == before
    with_image = {"model": "bytedance/seedance-1.5-pro-i2v", "prompt": "x", "image_url": IMAGE}
    assert (await gateway.client.post(SUBMIT, headers=tl(key), json=with_image)).status_code == 200
    not_https = {**with_image, "image_url": "http://example.com/cat.png"}
    assert_error(await gateway.client.post(SUBMIT, headers=tl(key), json=not_https), 400, "invalid_image_url")


@pytest.mark.parametrize("duration", [31, 30.5, 0, 0.5, -5, "5", True])
async def test_case_06_duration_outside_1_to_30_is_400(gateway: Gateway, duration: Any) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": WAN, "prompt": "x", "duration": duration}
    )
    assert assert_error(response, 400, "invalid_duration")["param"] == "duration"


async def test_case_06_whole_float_durations_are_accepted(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    task_id = await submit(gateway, key, {"model": WAN, "prompt": "simulate:hang", "duration": 30.0})
    assert (await gateway.services.jobs.get(principal, task_id)).request.duration_s == 30


async def test_fractional_durations_are_rounded_up_for_the_upstream_and_billed_as_asked(
    gateway: Gateway,
) -> None:
    key, principal = await gateway.account()
    task_id = await submit(gateway, key, {"model": WAN, "prompt": "a harbour", "duration": 5.5})
    job = await gateway.services.jobs.get(principal, task_id)
    assert job.request.duration_s == 6 and str(job.request.asked_duration_s) == "5.500"
    spec = gateway.services.catalog.get(job.model)
    assert spec.price is not None and spec.price.rule == "per_clip" and spec.price.amount is not None
    linear = spec.price.amount * Decimal("5.5") / spec.price.base_seconds  # the seed's rule on 5.5 s
    assert job.estimated_micros == int(linear * 1_000_000)
    whole = await submit(gateway, key, {"model": WAN, "prompt": "a harbour", "duration": 6})
    assert (await gateway.services.jobs.get(principal, whole)).estimated_micros > job.estimated_micros
    done = await wait_done(gateway, key, task_id)
    assert done["task"]["status"] == "TASK_STATUS_SUCCEED"
    finished = await gateway.services.jobs.get(principal, task_id)
    assert finished.media is not None and finished.media.duration_s >= 5.5
    assert finished.charged_micros == job.estimated_micros  # a 6 s clip, billed for the 5.5 s asked


async def test_case_07_hunyuan_is_fixed_5s_and_16_9_or_9_16(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    model = "tencent/hunyuan-video-fast"
    ten = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": model, "prompt": "x", "duration": 10}
    )
    assert_error(ten, 400, "invalid_duration")
    square = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": model, "prompt": "x", "aspect_ratio": "1:1"}
    )
    assert_error(square, 400, "invalid_aspect_ratio")
    portrait = {"model": model, "prompt": "simulate:hang", "duration": 5, "aspect_ratio": "9:16"}
    assert (await gateway.client.post(SUBMIT, headers=tl(key), json=portrait)).status_code == 200


async def test_case_08_unknown_model_and_unknown_task_are_404(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(SUBMIT, headers=tl(key), json={"model": "foo/bar", "prompt": "x"})
    assert assert_error(response, 404)["param"] == "model"
    soon = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": "minimax/hailuo-02", "prompt": "x"}
    )
    assert "coming soon" in assert_error(soon, 404)["message"]
    assert_error(await gateway.client.get(f"{TASKS}/does-not-exist", headers=tl(key)), 404, "not_found")


async def test_case_09_balance_below_the_price_is_402_and_creates_no_task(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="0.99")  # 10 s of Wan costs $1.00
    response = await gateway.client.post(
        SUBMIT, headers=tl(key), json={"model": WAN, "prompt": "x", "duration": 10}
    )
    assert_error(response, 402, "insufficient_balance")
    assert (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"] == []
    assert await balance(gateway, key) == (990_000, 0)


async def test_case_10_price_scales_linearly_from_the_5s_base(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="20")
    kling = "kuaishou/kling-v3.0-pro-t2v"
    ten = await submit(gateway, key, {"model": kling, "prompt": "simulate:hang", "duration": 10})
    assert await balance(gateway, key) == (20_000_000 - 2_240_000, 2_240_000)
    assert [e["amount"] for e in await ledger(gateway, key, ten)] == ["-2.24"]
    thirty = await submit(gateway, key, {"model": kling, "prompt": "simulate:hang", "duration": 30})
    assert [e["amount_micros"] for e in await ledger(gateway, key, thirty)] == [-6 * 1_120_000]


async def test_case_11_the_61st_request_in_a_minute_is_429(settings: Settings) -> None:
    async with running(settings.model_copy(update={"rate_limit_per_minute": 60})) as gw:
        key, _ = await gw.account()
        task_id = await submit(gw, key, {"model": WAN, "prompt": "simulate:hang"})
        answers = [await gw.client.get(f"{TASKS}/{task_id}", headers=tl(key)) for _ in range(61)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    error = assert_error(limited[0], 429)
    assert error["type"] == "rate_limit_error" and int(limited[0].headers["Retry-After"]) >= 1


def test_case_11_rate_limit_renders_in_the_openai_envelope() -> None:
    response = thalam.render_error(
        RateLimited("slow down", retry_after_s=7, limit=60, reset_at=1_800_000_000)
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    body = json.loads(bytes(response.body))
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["type"] == "rate_limit_error"


async def test_case_12_missing_or_non_tl_key_is_401(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    body = {"model": WAN, "prompt": "x"}
    assert_error(await gateway.client.post(SUBMIT, json=body), 401, "missing_api_key")
    assert_error(await gateway.client.post(SUBMIT, headers=auth(key), json=body), 401, "invalid_api_key")
    wrong = auth("tl-vg_test_not-a-real-key")
    assert_error(await gateway.client.post(SUBMIT, headers=wrong, json=body), 401, "invalid_api_key")
    assert_error(await gateway.client.get(f"{TASKS}/x", headers=auth("tl-")), 401)


async def test_case_13_another_accounts_task_is_404(gateway: Gateway) -> None:
    mine, _ = await gateway.account("mine")
    theirs, _ = await gateway.account("theirs")
    task_id = await submit(gateway, mine, {"model": WAN, "prompt": "simulate:hang"})
    assert_error(await gateway.client.get(f"{TASKS}/{task_id}", headers=tl(theirs)), 404, "not_found")


# ------------------------------------------------------------------ beyond the numbered cases


async def test_a_thalam_task_reads_in_the_native_api(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task_id = await submit(gateway, key, {"model": WAN, "prompt": "a river", "duration": 2})
    done = await wait_done(gateway, key, task_id)
    native = await gateway.client.get(f"/v1/videos/{task_id}", headers=auth(key))
    assert native.status_code == 200
    video = native.json()
    assert video["id"] == task_id and video["dialect"] == "thalam" and video["model"] == WAN
    assert video["status"] == "completed" and done["task"]["status"] == "TASK_STATUS_SUCCEED"


async def test_motion_control_needs_an_image_and_a_reference_video(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    model = "kuaishou/kling-v2.6-pro-motion-control"
    no_video = {"model": model, "prompt": "dance", "image_url": IMAGE}
    assert_error(await gateway.client.post(SUBMIT, headers=tl(key), json=no_video), 400, "missing_video_url")
    full = {**no_video, "video_url": "https://example.com/moves.mp4"}
    task_id = await submit(gateway, key, full)
    job = await gateway.services.jobs.get(principal, task_id)
    assert job.request.provider_options == {"video_url": "https://example.com/moves.mp4"}
    assert job.request.first_frame == IMAGE


async def test_malformed_bodies_and_unknown_routes_use_the_envelope(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    bad_json = await gateway.client.post(SUBMIT, headers=tl(key), content=b"{nope")
    assert "JSON" in assert_error(bad_json, 400)["message"]
    assert_error(await gateway.client.post(SUBMIT, headers=tl(key), json=[1]), 400)
    assert_error(
        await gateway.client.post(SUBMIT, headers=tl(key), json={"prompt": "x"}), 400, "missing_model"
    )
    no_prompt = await gateway.client.post(SUBMIT, headers=tl(key), json={"model": WAN})
    assert_error(no_prompt, 400, "missing_prompt")
    assert_error(await gateway.client.get("/thalam/v1/nope", headers=tl(key)), 404, "not_found")


@pytest.mark.parametrize(
    ("script", "timeout_s", "status"),
    # Only the no-ack case needs a short time limit (and an upstream far slower than it);
    # the unexpected shape gets a generous one, so a loaded machine cannot turn its 502
    # into a 504.
    [({"unknown_shape": True}, 30.0, 502), ({"delay_s": 3.0}, 0.5, 504)],
    ids=["unexpected-shape-502", "no-ack-504"],
)
async def test_submit_time_upstream_failure_is_synchronous_and_free(
    settings: Settings, script: dict[str, Any], timeout_s: float, status: int
) -> None:
    fake = FalFake()
    fake.script.update(script)
    live = settings.model_copy(
        update={
            "public_url": None,
            "upstream_timeout_s": timeout_s,
            "upstream_submit_timeout_s": timeout_s,
            "url_allowlist": "example.com,127.0.0.1",
        }
    )
    with serve_in_thread(fake.app()) as fake_url:
        fake.base_url = fake_url
        env = {"VIDGATE_FAL_API_KEY": "test-key", "VIDGATE_FAL_BASE_URL": fake_url}
        async with running(live, env) as gw:
            key, _ = await gw.account(mode="live")
            before = await balance(gw, key)
            response = await gw.client.post(SUBMIT, headers=tl(key), json={"model": WAN, "prompt": "x"})
            assert_error(response, status)
            assert response.headers["x-upstream-request-id"]
            assert await balance(gw, key) == before
    assert any(method == "POST" for method, _, _ in fake.requests)
