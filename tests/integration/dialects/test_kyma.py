"""The Kyma dialect through the whole app: spec section 5.8, cases 1-14, plus the
account endpoints, the ``refunded`` word and the native read of a Kyma job."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, auth
from vidgate.api.dialects import kyma
from vidgate.config import Settings
from vidgate.errors import RateLimited
from vidgate.runtime.app import create_app
from vidgate.testing.fakes.fal import FalFake
from vidgate.testing.server import serve_in_thread

SUBMIT = "/kyma/v1/video/generations"
ALIAS = "/kyma/v1/videos/generations"
JOBS = "/kyma/v1/jobs"
PUBLIC = "https://vidgate.example"
IMAGE = "https://example.com/a.png"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TERMINAL = ("succeeded", "failed", "refunded", "expired")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": PUBLIC, "url_allowlist": "example.com"})


def ky(key: str) -> dict[str, str]:
    return auth(f"ky-{key}")


async def submit(gateway: Gateway, key: str, body: dict[str, Any], *, path: str = SUBMIT) -> dict[str, Any]:
    response = await gateway.client.post(path, headers=ky(key), json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


async def get_job(gateway: Gateway, key: str, job_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"{JOBS}/{job_id}", headers=ky(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(
    gateway: Gateway, key: str, job_id: str, statuses: tuple[str, ...], *, timeout_s: float = 30.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = await get_job(gateway, key, job_id)
        if body["status"] in statuses:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} never reached {statuses}: {body}")
        await asyncio.sleep(0.05)


async def balance(gateway: Gateway, key: str) -> tuple[int, int]:
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    return account["balance_micros"], account["held_micros"]


async def ledger_kinds(gateway: Gateway, key: str, job_id: str | None = None) -> list[str]:
    params = {"job_id": job_id} if job_id else {}
    response = await gateway.client.get("/v1/account/ledger", params=params, headers=auth(key))
    return [entry["kind"] for entry in response.json()["data"]]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"] and error["type"]
    return error


@contextlib.asynccontextmanager
async def running(settings: Settings, env: dict[str, str] | None = None) -> AsyncIterator[Gateway]:
    """A gateway with its own settings (and upstream credentials in ``env``)."""
    app = create_app(settings, run_worker=True, env=env or {})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Gateway(app.state.services, client, app.state.runtime)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[tuple[Gateway, FalFake, str]]:
    """A gateway whose live jobs go to a fake fal.ai (no Kling credentials: fal is the route)."""
    fake = FalFake()
    live_settings = settings.model_copy(update={"public_url": None, "url_allowlist": "example.com,127.0.0.1"})
    with serve_in_thread(fake.app()) as fake_url:
        fake.base_url = fake_url
        env = {"VIDGATE_FAL_API_KEY": "test-key", "VIDGATE_FAL_BASE_URL": fake_url}
        async with running(live_settings, env) as gw:
            key, _ = await gw.account(mode="live")
            yield gw, fake, key


# ------------------------------------------------------------------ 5.8 cases


async def test_case_01_submit_is_202_with_a_pending_job(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "p", "duration": 5})
    assert job["object"] == "video.job" and job["status"] == "pending"
    assert job["output"] is None and job["error"] is None and job["charged_amount"] is None
    assert job["estimated_cost"] == 0.756 and isinstance(job["estimated_cost"], float)
    assert job["completed_at"] is None and ISO_MS.match(job["created_at"])
    assert job["model"] == "kling-3-pro" and job["id"] and job["job_id"] == job["id"]


async def test_case_02_the_videos_alias_behaves_identically(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "p", "duration": 5}, path=ALIAS)
    assert job["object"] == "video.job" and job["status"] == "pending" and job["estimated_cost"] == 0.756
    bad = await gateway.client.post(
        ALIAS, headers=ky(key), json={"model": "kling-3-pro", "prompt": "p", "duration": 0}
    )
    assert_error(bad, 400, "invalid_duration")


async def test_case_03_idempotency_key_replays_the_same_job_with_one_hold(gateway: Gateway) -> None:
    key, _ = await gateway.account("acme")
    other_key, _ = await gateway.account("acme")  # a second key on the same account
    body = {"model": "kling-3-pro", "prompt": "simulate:hang", "duration": 5, "idempotency_key": "k1"}
    first = await gateway.client.post(SUBMIT, headers=ky(key), json=body)
    again = await gateway.client.post(ALIAS, headers=ky(key), json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert (await ledger_kinds(gateway, key)).count("hold") == 1
    elsewhere = await gateway.client.post(SUBMIT, headers=ky(other_key), json=body)
    assert elsewhere.status_code == 202 and elsewhere.json()["id"] != first.json()["id"]
    changed = await gateway.client.post(SUBMIT, headers=ky(key), json={**body, "duration": 6})
    assert_error(changed, 409, "idempotency_key_reused")
    too_long = await gateway.client.post(SUBMIT, headers=ky(key), json={**body, "idempotency_key": "k" * 129})
    assert_error(too_long, 400, "invalid_request")


async def test_case_04_poll_while_running_then_after_success(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    hanging = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "simulate:hang", "duration": 2})
    running_job = await wait_for(gateway, key, hanging["id"], ("processing",))
    assert running_job["output"] is None and running_job["charged_amount"] is None

    job = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "a kite", "duration": 2})
    done = await wait_for(gateway, key, job["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    assert done["output"]["url"].startswith(f"{PUBLIC}/") and ISO_MS.match(done["completed_at"])
    assert done["charged_amount"] == pytest.approx(0.3024) and done["error"] is None
    video = await gateway.client.get(done["output"]["url"].removeprefix(PUBLIC))
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


async def test_case_05_failure_releases_the_hold_and_restores_the_balance(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    before = await balance(gateway, key)
    job = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "simulate:fail", "duration": 5})
    done = await wait_for(gateway, key, job["id"], TERMINAL)
    assert done["status"] in ("failed", "refunded") and done["charged_amount"] is None
    assert done["output"] is None and done["error"]["code"] == "provider_error"
    assert "simulate:fail" in done["error"]["message"]
    assert await ledger_kinds(gateway, key, job["id"]) == ["release", "hold"]
    assert await balance(gateway, key) == before


async def test_case_06_a_job_past_its_deadline_is_expired_and_released(settings: Settings) -> None:
    async with running(settings.model_copy(update={"job_timeout_s": 1})) as gw:
        key, _ = await gw.account(credit="10")
        before = await balance(gw, key)
        job = await submit(gw, key, {"model": "kling-3-pro", "prompt": "simulate:hang", "duration": 5})
        done = await wait_for(gw, key, job["id"], TERMINAL)
        assert done["status"] == "expired" and done["charged_amount"] is None
        assert done["error"]["code"] == "timeout"
        assert await ledger_kinds(gw, key, job["id"]) == ["release", "hold"]
        assert await balance(gw, key) == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"duration": 11}, "invalid_duration"),
        ({"duration": 0}, "invalid_duration"),
        ({"duration": 2.5}, "invalid_duration"),
        ({"duration": "5"}, "invalid_duration"),
        ({"prompt": "x" * 4001}, "invalid_prompt"),
        ({"prompt": ""}, "invalid_prompt"),
        ({"prompt": None}, "invalid_prompt"),
        ({"model": "kling-9"}, "invalid_model"),
        ({"model": None}, "invalid_model"),
        ({"image_url": "http://example.com/a.png"}, "invalid_request"),
        ({"extra": [1]}, "invalid_request"),
    ],
)
async def test_case_07_invalid_fields_are_400_with_kyma_codes(
    gateway: Gateway, change: dict[str, Any], code: str
) -> None:
    key, _ = await gateway.account()
    body = {"model": "kling-3-pro", "prompt": "p", "duration": 5, **change}
    response = await gateway.client.post(SUBMIT, headers=ky(key), json=body)
    assert assert_error(response, 400, code)["type"] == "invalid_request_error"


async def test_case_08_balance_below_the_hold_is_402_and_creates_no_job(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="0.75")  # 5 s of kling-3-pro holds $0.756
    response = await gateway.client.post(
        SUBMIT, headers=ky(key), json={"model": "kling-3-pro", "prompt": "p", "duration": 5}
    )
    assert_error(response, 402, "insufficient_balance")
    assert (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"] == []


async def test_case_09_a_bad_key_is_401_auth_error(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    body = {"model": "kling-3-pro", "prompt": "simulate:hang"}
    for headers in ({}, auth("ky-not-a-key"), auth("ky-vg_test_nope"), {"Authorization": "Basic x"}):
        assert_error(await gateway.client.post(SUBMIT, headers=headers, json=body), 401, "auth_error")
    for accepted in (f"ky-{key}", f"kyma-{key}", key):
        assert (await gateway.client.post(SUBMIT, headers=auth(accepted), json=body)).status_code == 202


async def test_case_10_a_body_over_25_mb_is_413_invalid_request(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    huge = b'{"model":"kling-3-pro","prompt":"' + b"x" * (25 * 1024 * 1024) + b'"}'
    response = await gateway.client.post(
        SUBMIT, headers={**ky(key), "Content-Type": "application/json"}, content=huge
    )
    assert_error(response, 413, "invalid_request")


async def test_case_11_exceeding_the_rpm_is_429_rate_limited(settings: Settings) -> None:
    async with running(settings.model_copy(update={"rate_limit_per_minute": 20})) as gw:
        key, _ = await gw.account()
        answers = [await gw.client.get(f"{JOBS}/nope", headers=ky(key)) for _ in range(21)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    assert assert_error(limited[0], 429, "rate_limited")["type"] == "rate_limit"
    assert int(limited[0].headers["Retry-After"]) >= 1


def test_case_11_rate_limit_renders_with_retry_after() -> None:
    response = kyma.render_error(RateLimited("slow down", retry_after_s=3, limit=20, reset_at=1_800_000_000))
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert json.loads(bytes(response.body))["error"] == {
        "code": "rate_limited",
        "message": "slow down",
        "type": "rate_limit",
    }


async def test_case_12_image_url_goes_to_the_i2v_variant(live: tuple[Gateway, FalFake, str]) -> None:
    gw, fake, key = live
    job = await submit(gw, key, {"model": "kling-2.5-pro", "prompt": "it moves", "image_url": IMAGE})
    done = await wait_for(gw, key, job["id"], TERMINAL)
    assert done["status"] == "succeeded", done
    posts = [(path, body) for method, path, body in fake.requests if method == "POST"]
    assert posts == [("/fal-ai/kling-video/v2.5-turbo/pro/image-to-video", posts[0][1])]
    assert posts[0][1]["image_url"] == IMAGE
    text_only = await submit(gw, key, {"model": "kling-2.5-pro", "prompt": "no image"})
    await wait_for(gw, key, text_only["id"], TERMINAL)
    assert [p for m, p, _ in fake.requests if m == "POST"][-1].endswith("/text-to-video")


async def test_case_13_extra_is_forwarded_verbatim_but_never_over_a_validated_field(
    live: tuple[Gateway, FalFake, str],
) -> None:
    """The seed forwards ``extra`` verbatim; issue 14 adds that it merges UNDER what vidgate
    validated, so it adds fields but cannot replace one (here the checked aspect ratio)."""
    gw, fake, key = live
    extra = {"seed": 42, "aspect_ratio": "9:16", "anything": {"nested": [1, 2]}}
    job = await submit(gw, key, {"model": "kling-2.5-pro", "prompt": "p", "extra": extra})
    await wait_for(gw, key, job["id"], TERMINAL)
    sent = next(body for method, _, body in fake.requests if method == "POST")
    assert sent["seed"] == 42 and sent["anything"] == {"nested": [1, 2]}
    assert sent["aspect_ratio"] == "16:9"  # the validated value, not the pass-through one


async def test_case_14_an_unknown_job_is_404(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    assert_error(await gateway.client.get(f"{JOBS}/unknown", headers=ky(key)), 404, "not_found")
    mine = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "simulate:hang"})
    theirs, _ = await gateway.account("someone-else")
    assert_error(await gateway.client.get(f"{JOBS}/{mine['id']}", headers=ky(theirs)), 404, "not_found")


# ------------------------------------------------------------------ beyond the numbered cases


async def test_a_kyma_job_reads_in_the_native_api(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job = await submit(gateway, key, {"model": "seedance-2-pro", "prompt": "waves", "duration": 2})
    done = await wait_for(gateway, key, job["id"], TERMINAL)
    native = (await gateway.client.get(f"/v1/videos/{job['id']}", headers=auth(key))).json()
    assert native["id"] == job["id"] and native["dialect"] == "kyma" and native["status"] == "completed"
    assert native["cost"]["charged"] == f"{done['charged_amount']:.5f}"


async def test_a_job_canceled_elsewhere_reads_as_refunded(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "simulate:hang"})
    assert (await gateway.client.post(f"/v1/videos/{job['id']}/cancel", headers=auth(key))).status_code == 200
    done = await get_job(gateway, key, job["id"])
    assert done["status"] == "refunded" and done["error"]["code"] == "canceled"
    assert done["charged_amount"] is None


async def test_genmedia_jobs_takes_the_veo_skus_only(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    veo = await submit(
        gateway, key, {"model": "veo-3-fast", "prompt": "simulate:hang"}, path="/kyma/v1/genmedia/jobs"
    )
    assert veo["model"] == "veo-3-fast" and veo["estimated_cost"] == 0.675
    kling = await gateway.client.post(
        "/kyma/v1/genmedia/jobs", headers=ky(key), json={"model": "kling-3-pro", "prompt": "p"}
    )
    assert_error(kling, 400, "invalid_model")


async def test_balance_models_and_limits(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    job = await submit(gateway, key, {"model": "kling-3-pro", "prompt": "a kite", "duration": 2})
    done = await wait_for(gateway, key, job["id"], TERMINAL)
    credits = (await gateway.client.get("/kyma/v1/credits/balance", headers=ky(key))).json()
    assert credits["balance"] == pytest.approx(10 - done["charged_amount"]) and credits["currency"] == "USD"
    models = (await gateway.client.get("/kyma/v1/models", headers=ky(key))).json()
    by_id = {m["id"]: m for m in models["data"]}
    assert models["object"] == "list" and by_id["kling-3-pro"]["pricing"]["per_second_usd"] == 0.1512
    assert {"kling-2.5-pro", "seedance-2-fast", "hailuo-02-768p", "veo-3"} <= set(by_id)
    limits = (await gateway.client.get("/kyma/v1/auth/limits", headers=ky(key))).json()
    assert set(limits) == {"rpm_limit", "rpm_used", "rpm_remaining", "has_credits", "used_today"}
    assert limits["has_credits"] is True and limits["used_today"] == pytest.approx(done["charged_amount"])
    assert_error(await gateway.client.get("/kyma/v1/credits/balance"), 401, "auth_error")
