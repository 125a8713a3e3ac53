"""The Apiframe v2 dialect through the whole app: spec section 4.9, cases 1-16."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import Gateway, auth
from vidgate.api.dialects import apiframe
from vidgate.billing.accounts import revoke_key
from vidgate.billing.keys import hash_key
from vidgate.config import Settings
from vidgate.domain.job import Job, Principal
from vidgate.errors import RateLimited
from vidgate.ids import job_id_from_uuid
from vidgate.media.links import MediaLinks
from vidgate.store import accounts as account_store
from vidgate.store import events as event_store
from vidgate.testing.server import serve_in_thread

GENERATE = "/apiframe/v2/videos/generate"
JOBS = "/apiframe/v2/jobs"
IMAGE = "https://example.com/start.png"
KLING = {
    "prompt": "p",
    "model": "kling-3.0",
    "klingParams": {"duration": 10, "mode": "pro", "generate_audio": True},
}
REQUIRED = {
    "id",
    "status",
    "model",
    "progress",
    "result",
    "error",
    "creditCost",
    "webhookStatus",
    "createdAt",
    "completedAt",
}


# Fast webhook sender knobs (see vidgate.webhooks.config).
FAST_DELIVERY = {"webhook_interval_s": "0.05", "webhook_retry_base_s": "0.05", "webhook_cursor_grace_s": "0"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A slower simulator (a job is reliably still running right after submit), loopback
    webhook receivers allowed, and a fast webhook sender."""
    return settings.model_copy(
        update={
            "simulator_latency_s": 1.0,
            "url_allowlist": "example.com,127.0.0.1",
            "extra": dict(FAST_DELIVERY),
        }
    )


@dataclass
class Receiver:
    """A webhook receiver on a loopback port, keeping each request's headers and raw body."""

    url: str = ""
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self) -> list[str]:
        return [headers.get("x-webhook-event", "") for headers, _ in self.seen]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    async def receive(request: Request) -> Response:
        state.seen.append((dict(request.headers), await request.body()))
        return Response("ok")

    with serve_in_thread(Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])) as base:
        state.url = f"{base}/webhook"
        yield state


def key_header(key: str) -> dict[str, str]:
    return {"X-API-Key": f"afk_{key}"}


async def submit(gateway: Gateway, key: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await gateway.client.post(GENERATE, headers={**key_header(key), **headers}, json=body)
    assert response.status_code == 202, response.text
    payload: dict[str, Any] = response.json()
    return payload


async def wait_done(gateway: Gateway, key: str, job_id: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await gateway.client.get(f"{JOBS}/{job_id}", headers=key_header(key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {body}")
        await asyncio.sleep(0.05)


def assert_400(response: Any, path: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert path in body["details"], body
    assert all(isinstance(m, str) for m in body["details"][path])
    return body


async def job_of(gateway: Gateway, principal: Principal, job_uuid: str) -> Job:
    job_id = job_id_from_uuid(job_uuid)
    assert job_id is not None
    return await gateway.services.jobs.get(principal, job_id)


async def balance(gateway: Gateway, key: str) -> tuple[str, str]:
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    return account["balance"], account["held"]


def links_for(gateway: Gateway) -> MediaLinks:
    svc = gateway.services
    return MediaLinks("http://testserver", svc.signing_secret, svc.settings.signed_url_ttl_s)


# ------------------------------------------------------------------ 4.9 cases


async def test_case_01_generate_answers_202_with_job_id_and_status_only(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    response = await gateway.client.post(GENERATE, headers=key_header(key), json=KLING)
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"jobId", "status"} and body["status"] == "QUEUED"
    assert str(uuid.UUID(body["jobId"])) == body["jobId"]
    job = await job_of(gateway, principal, body["jobId"])
    assert job.request.duration_s == 10 and job.request.audio is True
    assert job.request.options == {"mode": "pro"} and job.dialect == "apiframe"


async def test_case_02_a_running_job_has_every_required_key(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job_id = (await submit(gateway, key, KLING))["jobId"]
    response = await gateway.client.get(f"{JOBS}/{job_id}", headers=key_header(key))
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= REQUIRED
    assert body["id"] == job_id and body["model"] == "kling-3.0"
    assert body["status"] in ("QUEUED", "PROCESSING")
    assert body["result"] is None and body["error"] is None and body["completedAt"] is None
    assert isinstance(body["progress"], int) and 0 <= body["progress"] <= 100
    assert body["creditCost"] == 70  # kling-3.0 pro with audio: 7 credits x 10 s
    assert body["webhookStatus"] is None and body["createdAt"].endswith("Z")


async def test_case_03_completed_job_has_a_video_url(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job_id = (await submit(gateway, key, KLING))["jobId"]
    done = await wait_done(gateway, key, job_id)
    assert done["status"] == "COMPLETED" and done["progress"] == 100, done
    assert done["completedAt"] is not None and done["error"] is None and done["expired"] is False
    assert done["creditCost"] == 70
    url = done["result"]["videoUrl"]
    assert url.startswith(("http://", "https://")) and url.split("?")[0].endswith(".mp4")
    video = await gateway.client.get(url.replace("http://testserver", ""))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"


async def test_case_04_midjourney_video_has_four_videos_and_needs_its_block(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    body = {"prompt": "the waves move", "model": "midjourney-video"}
    job_id = (
        await submit(
            gateway, key, {**body, "midjourneyVideoParams": {"start_image": IMAGE, "resolution": "hd"}}
        )
    )["jobId"]
    job = await job_of(gateway, principal, job_id)
    assert job.request.first_frame == IMAGE and job.request.resolution == "720p"
    done = await wait_done(gateway, key, job_id)
    assert done["status"] == "COMPLETED", done
    videos = done["result"]["videos"]
    assert len(videos) == 4 and all(v.startswith("http") for v in videos)
    assert len(set(videos)) == 4, "four distinct takes, each re-hosted"
    assert "videoUrl" not in done["result"]
    missing = await gateway.client.post(GENERATE, headers=key_header(key), json=body)
    assert_400(missing, "midjourneyVideoParams")
    no_image = await gateway.client.post(
        GENERATE, headers=key_header(key), json={**body, "midjourneyVideoParams": {"motion": "high"}}
    )
    assert_400(no_image, "midjourneyVideoParams.start_image")


async def test_case_05_failure_refunds_and_costs_zero(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    before = await balance(gateway, key)
    job_id = (await submit(gateway, key, {**KLING, "prompt": "simulate:fail"}))["jobId"]
    done = await wait_done(gateway, key, job_id)
    assert done["status"] == "FAILED", done
    assert isinstance(done["error"], str) and "simulate:fail" in done["error"]
    assert done["result"] is None and done["creditCost"] == 0 and done["completedAt"] is not None
    assert await balance(gateway, key) == before


async def test_case_06_prompt_length_unknown_fields_and_wrong_family_are_400(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**KLING, "prompt": "x" * 4001}, "prompt"),
        ({**KLING, "prompt": ""}, "prompt"),
        ({**KLING, "foo": 1}, "foo"),
        ({"prompt": "p", "model": "kling-3.0", "soraParams": {"duration": 4}}, "soraParams"),
        ({"model": "kling-3.0"}, "prompt"),
        ({"prompt": "p", "model": "kling-9"}, "model"),
        ({"prompt": "p", "model": "kling-3.0", "klingParams": {"bogus": 1}}, "klingParams.bogus"),
        ({"prompt": "p", "model": "kling-3.0", "klingParams": {"duration": "10"}}, "klingParams.duration"),
        (
            {"prompt": "p", "model": "kling-3.0", "klingParams": {"start_image": "nope"}},
            "klingParams.start_image",
        ),
        ({"prompt": "p", "model": "kling-3.0", "klingParams": {"mode": "ultra"}}, "klingParams.mode"),
        ({"prompt": "p", "model": "hailuo-2.3-fast"}, "hailuoParams.image"),
        ({"prompt": "p" * 2001, "model": "hailuo-02"}, "prompt"),
    ]
    for body, path in cases:
        response = await gateway.client.post(GENERATE, headers=key_header(key), json=body)
        assert_400(response, path)
    not_json = await gateway.client.post(
        GENERATE, headers={**key_header(key), "Content-Type": "application/json"}, content=b"[1]"
    )
    assert not_json.status_code == 400


async def test_case_07_sora_duration_must_be_one_of_its_enum(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    response = await gateway.client.post(
        GENERATE,
        headers=key_header(key),
        json={"prompt": "p", "model": "sora-2", "soraParams": {"duration": 5}},
    )
    body = assert_400(response, "soraParams.duration")
    assert "4, 8, 10, 12 or 15" in body["error"]
    ok = await submit(
        gateway,
        key,
        {"prompt": "p", "model": "sora-2-pro", "soraParams": {"duration": 8, "resolution": "high"}},
    )
    job = await job_of(gateway, principal, ok["jobId"])
    assert job.request.options == {"resolution_tier": "high"} and job.request.duration_s == 8
    assert (await gateway.client.get(f"{JOBS}/{ok['jobId']}", headers=key_header(key))).json()[
        "creditCost"
    ] == 40
    tier = await gateway.client.post(
        GENERATE,
        headers=key_header(key),
        json={"prompt": "p", "model": "sora-2", "soraParams": {"resolution": "4k"}},
    )
    assert_400(tier, "soraParams.resolution")


async def test_case_08_missing_revoked_and_inactive_keys(gateway: Gateway) -> None:
    missing = await gateway.client.post(GENERATE, json=KLING)
    assert missing.status_code == 401 and missing.json() == {"error": "API key is required"}
    unknown = await gateway.client.post(GENERATE, headers={"X-API-Key": "afk_nothing"}, json=KLING)
    assert unknown.status_code == 401 and unknown.json() == {"error": "Invalid API key"}

    revoked_key, revoked = await gateway.account("revoked")
    async with gateway.services.db.transaction() as conn:
        await revoke_key(conn, revoked.key_id)
    response = await gateway.client.post(GENERATE, headers=key_header(revoked_key), json=KLING)
    assert response.status_code == 401 and response.json() == {"error": "Invalid API key"}

    inactive_key, inactive = await gateway.account("inactive")
    async with gateway.services.db.transaction() as conn:
        await account_store.update_key(conn, inactive.key_id, disabled=True)
    response = await gateway.client.get(f"{JOBS}/{uuid.uuid4()}", headers=key_header(inactive_key))
    assert response.status_code == 403 and response.json() == {"error": "API key is inactive"}


async def test_case_09_too_few_credits_is_402_in_whole_credits(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="0.05")  # 5 credits at the default $0.01
    response = await gateway.client.post(GENERATE, headers=key_header(key), json=KLING)
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["error"] == "Insufficient credits"
    assert isinstance(body["creditsRequired"], int) and isinstance(body["creditsAvailable"], int)
    assert body["creditsRequired"] == 70 and body["creditsAvailable"] == 5
    assert body["creditsRequired"] > body["creditsAvailable"]


async def test_case_10_job_ids_are_uuids_and_scoped_to_the_owner(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    other_key, _ = await gateway.account("other")
    assert_400(await gateway.client.get(f"{JOBS}/not-a-uuid", headers=key_header(key)), "id")
    random = await gateway.client.get(f"{JOBS}/{uuid.uuid4()}", headers=key_header(key))
    assert random.status_code == 404 and isinstance(random.json()["error"], str)
    job_id = (await submit(gateway, other_key, KLING))["jobId"]
    theirs = await gateway.client.get(f"{JOBS}/{job_id}", headers=key_header(key))
    assert theirs.status_code == 404 and theirs.json() == random.json()


async def test_case_11_idempotency_key_replays_the_job_with_one_debit(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    first = await submit(gateway, key, KLING, **{"Idempotency-Key": "order-42"})
    second = await submit(gateway, key, KLING, **{"Idempotency-Key": "order-42"})
    assert first["jobId"] == second["jobId"]
    job_id = job_id_from_uuid(first["jobId"])
    ledger = (
        await gateway.client.get("/v1/account/ledger", params={"job_id": job_id}, headers=auth(key))
    ).json()
    assert [e["kind"] for e in ledger["data"]].count("hold") == 1
    held = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    assert held["balance_micros"] + held["held_micros"] == 10_000_000
    assert held["held_micros"] in (0, 700_000)
    changed = await gateway.client.post(
        GENERATE, headers={**key_header(key), "Idempotency-Key": "order-42"}, json={**KLING, "prompt": "q"}
    )
    assert changed.status_code == 409 and isinstance(changed.json()["error"], str)


async def test_case_12_webhooks_are_subscribed_signed_and_shaped(gateway: Gateway) -> None:
    """The hook the webhook sender calls (the sender itself is tested in vidgate.delivery)."""
    key, principal = await gateway.account()
    hook = "https://example.com/apiframe-hook"
    body = {**KLING, "webhookUrl": hook, "webhookEvents": ["progress", "completed"]}
    job_id = (await submit(gateway, key, body))["jobId"]
    job = await job_of(gateway, principal, job_id)
    assert job.webhook_url == hook
    assert job.request.webhook_events == ("video.progress", "video.completed")
    links, secret_hash = links_for(gateway), hash_key(key)
    assert hashlib.sha256(key.encode()).hexdigest() == secret_hash

    progress = apiframe.render_webhook(job, "video.progress", links, secret_hash)
    assert progress is not None and progress[1]["X-Webhook-Event"] == "progress"
    payload = json.loads(progress[0])
    assert payload["event"] == "progress" and payload["status"] == "PROCESSING" and payload["jobId"] == job_id

    await wait_done(gateway, key, job_id)
    job = await job_of(gateway, principal, job_id)
    rendered = apiframe.render_webhook(job, "video.completed", links, secret_hash)
    assert rendered is not None
    raw, headers = rendered
    assert headers["X-Webhook-Event"] == "completed" and headers["Content-Type"] == "application/json"
    expected = hmac.new(hashlib.sha256(key.encode()).digest(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == f"sha256={expected}"
    completed = json.loads(raw)
    assert completed["event"] == "completed" and completed["jobId"] == job_id
    assert completed["status"] == "COMPLETED" and completed["creditCost"] == 70
    assert completed["result"]["videoUrl"].startswith("http") and completed["completedAt"]
    # Not subscribed to failures, and the job did not fail: nothing to deliver either way.
    assert apiframe.render_webhook(job, "video.failed", links, secret_hash) is None
    async with gateway.services.db.read() as conn:
        kinds = [e.type for e in await event_store.events_of_job(conn, job.id)]
    assert "video.completed" in kinds and "video.failed" not in kinds

    # Without webhookEvents: completed and failed (no progress).
    plain = (await submit(gateway, key, {**KLING, "webhookUrl": hook, "prompt": "simulate:fail"}))["jobId"]
    plain_job = await job_of(gateway, principal, plain)
    assert apiframe.render_webhook(plain_job, "video.progress", links, secret_hash) is None
    await wait_done(gateway, key, plain)
    plain_job = await job_of(gateway, principal, plain)
    failed = apiframe.render_webhook(plain_job, "video.failed", links, secret_hash)
    assert failed is not None and failed[1]["X-Webhook-Event"] == "failed"
    assert json.loads(failed[0])["status"] == "FAILED" and json.loads(failed[0])["error"]


async def test_case_12_end_to_end_delivery(gateway: Gateway, receiver: Receiver) -> None:
    key, _ = await gateway.account()
    body = {**KLING, "webhookUrl": receiver.url, "webhookEvents": ["progress", "completed"]}
    job_id = (await gateway.client.post(GENERATE, headers={"X-API-Key": key}, json=body)).json()["jobId"]
    await wait_done(gateway, key, job_id)
    deadline = asyncio.get_running_loop().time() + 20
    while "completed" not in receiver.events():
        assert asyncio.get_running_loop().time() < deadline, receiver.seen
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert set(receiver.events()) <= {"progress", "completed"} and "failed" not in receiver.events()
    signing_key = hashlib.sha256(key.encode()).digest()  # the SDK's verifyWebhookSignature
    for headers, raw in receiver.seen:
        expected = hmac.new(signing_key, raw, hashlib.sha256).hexdigest()
        assert headers["x-webhook-signature"] == f"sha256={expected}"
        payload = json.loads(raw)
        assert payload["event"] == headers["x-webhook-event"] and payload["jobId"] == job_id
    [(_, raw)] = [(h, b) for h, b in receiver.seen if h["x-webhook-event"] == "completed"]
    completed = json.loads(raw)
    assert completed["status"] == "COMPLETED" and completed["creditCost"] == 70 and completed["completedAt"]
    assert completed["result"]["videoUrl"].startswith("http")
    shown = (await gateway.client.get(f"{JOBS}/{job_id}", headers={"X-API-Key": key})).json()
    assert shown["webhookStatus"] == "delivered"


async def test_case_13_webhook_events_are_validated(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    hook = "https://example.com/apiframe-hook"
    for events in ([], ["done"], "completed"):
        response = await gateway.client.post(
            GENERATE, headers=key_header(key), json={**KLING, "webhookUrl": hook, "webhookEvents": events}
        )
        assert_400(response, "webhookEvents")
    bad_url = await gateway.client.post(
        GENERATE, headers=key_header(key), json={**KLING, "webhookUrl": "nope"}
    )
    assert_400(bad_url, "webhookUrl")


async def test_case_14_listing_pages_with_a_cursor(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    ids = [(await submit(gateway, key, {**KLING, "prompt": f"p{i}"}))["jobId"] for i in range(3)]
    failed = (await submit(gateway, key, {**KLING, "prompt": "simulate:fail"}))["jobId"]
    for job_id in [*ids, failed]:
        await wait_done(gateway, key, job_id)
    first = await gateway.client.get(
        JOBS, params={"status": "COMPLETED", "limit": 2}, headers=key_header(key)
    )
    assert first.status_code == 200
    page = first.json()
    assert set(page) >= {"jobs", "nextCursor", "hasMore"}
    assert len(page["jobs"]) == 2 and page["hasMore"] is True and page["nextCursor"]
    second = (
        await gateway.client.get(
            JOBS,
            params={"status": "COMPLETED", "limit": 2, "cursor": page["nextCursor"]},
            headers=key_header(key),
        )
    ).json()
    assert len(second["jobs"]) == 1 and second["hasMore"] is False and second["nextCursor"] is None
    listed = [j["id"] for j in page["jobs"] + second["jobs"]]
    assert sorted(listed) == sorted(ids) and failed not in listed
    assert all(j["status"] == "COMPLETED" for j in page["jobs"] + second["jobs"])

    ten = (
        await gateway.client.get(JOBS, params={"status": "COMPLETED", "limit": 10}, headers=key_header(key))
    ).json()
    assert len(ten["jobs"]) == 3 and ten["hasMore"] is False
    only_failed = (
        await gateway.client.get(JOBS, params={"status": "FAILED"}, headers=key_header(key))
    ).json()
    assert [j["id"] for j in only_failed["jobs"]] == [failed]
    by_model = (await gateway.client.get(JOBS, params={"model": "sora-2"}, headers=key_header(key))).json()
    assert by_model["jobs"] == []
    found = (await gateway.client.get(JOBS, params={"search": failed}, headers=key_header(key))).json()
    assert [j["id"] for j in found["jobs"]] == [failed]
    for params, path in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"cursor": "nope"}, "cursor"),
    ):
        assert_400(await gateway.client.get(JOBS, params=params, headers=key_header(key)), path)


async def test_include_models_lists_every_model_the_caller_used(gateway: Gateway) -> None:
    """``GET /v2/jobs?include_models=true`` (Apiframe's OpenAPI: ``"true" | "false"``,
    default false) adds ``models``: the caller's models, whatever the page's filters,
    by their Apiframe names; another account's models stay out."""
    key, _ = await gateway.account()
    other, _ = await gateway.account("another")
    await submit(gateway, key, KLING)
    await submit(gateway, key, {**KLING, "prompt": "again"})
    await submit(gateway, key, {"prompt": "p", "model": "seedance-2-fast"})  # id apiframe/seedance-2-fast
    await submit(gateway, other, {"prompt": "p", "model": "sora-2"})

    async def listed(**params: Any) -> dict[str, Any]:
        response = await gateway.client.get(JOBS, params=params, headers=key_header(key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert "models" not in await listed()
    assert "models" not in await listed(include_models="false")
    page = await listed(include_models="true", limit=1, model="kling-3.0")
    assert len(page["jobs"]) == 1
    assert page["models"] == ["kling-3.0", "seedance-2-fast"]
    none = await listed(include_models="true", status="FAILED")
    assert none["jobs"] == [] and none["models"] == ["kling-3.0", "seedance-2-fast"]
    assert_400(
        await gateway.client.get(JOBS, params={"include_models": "yes"}, headers=key_header(key)),
        "include_models",
    )


async def test_case_15_models_are_public(gateway: Gateway) -> None:
    response = await gateway.client.get("/apiframe/v2/models", params={"modality": "video"})
    assert response.status_code == 200
    models = response.json()["models"]
    assert len(models) == 31
    assert all({"id", "label", "modality"} <= set(m) and m["modality"] == "video" for m in models)
    by_id = {m["id"]: m for m in models}
    assert (by_id["kling-3.0"]["costMin"], by_id["kling-3.0"]["costMax"]) == (9, 150)
    assert (by_id["sora-2"]["costMin"], by_id["sora-2"]["costMax"]) == (4, 15)
    assert by_id["sora-2"]["pricingMode"] == "per-second" and by_id["veo-3.1"]["pricingMode"] == "flat"
    assert "veo-3" in by_id and "apiframe/veo-3" not in by_id
    images = await gateway.client.get("/apiframe/v2/models", params={"modality": "image"})
    assert images.json() == {"models": []}


async def test_case_16_rate_limit_carries_retry_after(gateway: Gateway) -> None:
    rendered = apiframe.render_error(RateLimited("Too many requests", retry_after_s=12, limit=60, reset_at=0))
    assert rendered.status_code == 429 and rendered.headers["Retry-After"] == "12"
    assert json.loads(bytes(rendered.body)) == {"error": "Too many requests"}
    # Through the rate-limit middleware: an account limited to 2 requests a minute.
    key, principal = await gateway.account()
    async with gateway.services.db.transaction() as conn:
        await account_store.update_account(conn, principal.account_id, rate_limit_per_minute=2)
    statuses = []
    for _ in range(3):
        response = await gateway.client.get(JOBS, headers=key_header(key))
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert set(response.json()) == {"error"} and response.json()["error"]


# ------------------------------------------------------------------ beyond the numbered cases


async def test_job_is_readable_in_the_native_api(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    job_uuid = (await submit(gateway, key, KLING))["jobId"]
    await wait_done(gateway, key, job_uuid)
    native = await gateway.client.get(f"/v1/videos/{job_id_from_uuid(job_uuid)}", headers=auth(key))
    assert native.status_code == 200
    body = native.json()
    assert body["vidgate_status"] == "succeeded" and body["dialect"] == "apiframe"
    assert body["model"] == "kling-3.0" and body["cost"]["charged"] == "0.70"


async def test_plain_vidgate_key_and_native_jobs_work_too(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(GENERATE, headers={"X-API-Key": key}, json=KLING)
    assert response.status_code == 202
    created = await gateway.client.post(
        "/v1/videos", headers=auth(key), json={"model": "sora-2", "prompt": "native", "seconds": "4"}
    )
    native_id = created.json()["id"]
    job_uuid = str(uuid.UUID(hex=native_id.removeprefix("video_")))
    seen = await gateway.client.get(f"{JOBS}/{job_uuid}", headers={"X-API-Key": key})
    assert seen.status_code == 200 and seen.json()["model"] == "sora-2"


async def test_unknown_route_uses_the_envelope(gateway: Gateway) -> None:
    response = await gateway.client.get("/apiframe/v2/nothing")
    assert response.status_code == 404 and set(response.json()) == {"error"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("model", "params", "path", "named"),
    [
        # Apiframe offers 9:21 on every Seedance model and 4k on seedance-2; no upstream
        # vidgate reaches (BytePlus Ark, fal) makes either.
        ("seedance-1-pro", {"aspect_ratio": "9:21"}, "seedanceParams.aspect_ratio", "9:21"),
        ("seedance-2", {"aspect_ratio": "9:21"}, "seedanceParams.aspect_ratio", "9:21"),
        ("seedance-2", {"resolution": "4k"}, "seedanceParams.resolution", "4k"),
        ("seedance-2-fast", {"resolution": "1080p"}, "seedanceParams.resolution", "1080p"),
    ],
)
async def test_a_seedance_shape_no_upstream_makes_is_a_400_before_anything_is_held(
    gateway: Gateway, model: str, params: dict[str, Any], path: str, named: str
) -> None:
    key, _ = await gateway.account()
    before = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    response = await gateway.client.post(
        GENERATE,
        headers=key_header(key),
        json={"prompt": "p", "model": model, "seedanceParams": params},
    )
    body = assert_400(response, path)
    assert named in body["error"] and "allowed" in body["error"], body
    after = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    assert after["held"] == before["held"] and after["balance"] == before["balance"]
    # What is still offered goes through.
    ok = await submit(
        gateway, key, {"prompt": "p", "model": model, "seedanceParams": {"aspect_ratio": "21:9"}}
    )
    assert ok["jobId"]
