"""The MiniMax (Taam Cloud) dialect through the whole app: spec section 3.9, cases 1-12."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Gateway, auth
from vidgate.api.dialects import minimax
from vidgate.api.dialects._minimax_ids import job_id_of_task as job_id_from_number
from vidgate.billing.keys import hash_key
from vidgate.config import Settings
from vidgate.errors import RateLimited
from vidgate.media.links import MediaLinks
from vidgate.store import accounts as account_store
from vidgate.testing.server import serve_in_thread

CREATE = "/minimax/v1/video_generation"
QUERY = "/minimax/v1/query/video_generation"
RETRIEVE = "/minimax/v1/files/retrieve"
IMAGE = "https://example.com/cat.png"


# Fast webhook sender knobs (see vidgate.webhooks.config).
FAST_DELIVERY = {"webhook_interval_s": "0.05", "webhook_retry_base_s": "0.05", "webhook_cursor_grace_s": "0"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A slower simulator (a job is reliably still running right after create), loopback
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
    """A callback receiver on a loopback port; echoes MiniMax's challenge unless told not to."""

    url: str = ""
    echo: bool = True
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def pushes(self) -> list[dict[str, Any]]:
        return [b for b in self.bodies if "challenge" not in b]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    async def receive(request: Request) -> Response:
        body = json.loads(await request.body())
        state.bodies.append(body)
        if "challenge" in body:
            return JSONResponse({"challenge": body["challenge"] if state.echo else "wrong"})
        return Response("ok")

    with serve_in_thread(Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])) as base:
        state.url = f"{base}/callback"
        yield state


async def create(gateway: Gateway, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await gateway.client.post(CREATE, headers=auth(key), json=body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


async def wait_done(gateway: Gateway, key: str, task: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await gateway.client.get(QUERY, params={"task_id": task}, headers=auth(key))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("Success", "Fail"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task} did not finish: {body}")
        await asyncio.sleep(0.05)


def assert_error(response: Any, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["base_resp"]["status_code"] == code, body
    assert body["error"]["code"] == code and body["error"]["message"] == body["base_resp"]["status_msg"]
    return body


async def balance(gateway: Gateway, key: str) -> tuple[str, str]:
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    return account["balance"], account["held"]


# ------------------------------------------------------------------ 3.9 cases


async def test_case_01_create_answers_a_numeric_task_id(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    prompt = "A spaceship lands [Truck left, Pan right]"
    body = await create(gateway, key, {"model": "T2V-01-Director", "prompt": prompt})
    assert body["task_id"].isdigit() and body["task_id"] != "0"
    assert body["base_resp"] == {"status_code": 0, "status_msg": "success"}
    job_id = job_id_from_number(body["task_id"])
    assert job_id is not None
    job = await gateway.services.jobs.get(principal, job_id)
    assert job.request.prompt == prompt  # camera commands pass through untouched
    assert job.dialect == "minimax" and job.request.resolution == "720p"


async def test_case_02_query_while_running(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task = (await create(gateway, key, {"model": "T2V-01", "prompt": "a quiet harbour"}))["task_id"]
    response = await gateway.client.get(QUERY, params={"task_id": task}, headers=auth(key))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] in ("Preparing", "Queueing", "Processing")
    assert body["task_id"] == task and body["file_id"] == ""
    assert body["base_resp"]["status_code"] == 0


async def test_case_03_success_has_file_id_and_frame_size(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task = (await create(gateway, key, {"model": "T2V-01", "prompt": "a quiet harbour"}))["task_id"]
    done = await wait_done(gateway, key, task)
    assert done["status"] == "Success", done
    assert done["file_id"].isdigit() and done["file_id"] != task
    assert isinstance(done["video_width"], int) and isinstance(done["video_height"], int)
    assert (done["video_width"], done["video_height"]) == (1280, 720)
    assert done["base_resp"] == {"status_code": 0, "status_msg": "success"}


async def test_case_04_file_retrieve_gives_a_download_url_for_an_mp4(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task = (await create(gateway, key, {"model": "T2V-01", "prompt": "a quiet harbour"}))["task_id"]
    done = await wait_done(gateway, key, task)
    response = await gateway.client.get(RETRIEVE, params={"file_id": done["file_id"]}, headers=auth(key))
    assert response.status_code == 200, response.text
    body = response.json()
    file = body["file"]
    assert file["file_id"] == done["file_id"] and file["purpose"] == "video_generation"
    assert file["filename"].endswith(".mp4") and isinstance(file["created_at"], int)
    assert body["base_resp"]["status_code"] == 0
    assert file["download_url"].startswith(("http://", "https://"))
    video = await gateway.client.get(file["download_url"].replace("http://testserver", ""))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp" and len(video.content) == file["bytes"]
    # The same bytes straight from the file API.
    content = await gateway.client.get(
        "/minimax/v1/files/retrieve_content", params={"file_id": done["file_id"]}, headers=auth(key)
    )
    assert content.status_code == 200 and content.content == video.content


async def test_case_05_i2v_without_first_frame_image_is_2013(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(
        CREATE, headers=auth(key), json={"model": "I2V-01", "prompt": "the cat blinks"}
    )
    body = assert_error(response, 400, 2013)
    assert "first_frame_image" in body["base_resp"]["status_msg"]
    assert "task_id" not in body or not body["task_id"]


async def test_case_06_s2v_with_subject_reference(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    body = await create(
        gateway,
        key,
        {
            "model": "S2V-01",
            "prompt": "she walks through the rain",
            "subject_reference": [{"type": "character", "image": [IMAGE]}],
        },
    )
    assert body["task_id"].isdigit()
    job_id = job_id_from_number(body["task_id"])
    assert job_id is not None
    job = await gateway.services.jobs.get(principal, job_id)
    assert job.request.reference_images == [IMAGE]
    missing = await gateway.client.post(CREATE, headers=auth(key), json={"model": "S2V-01", "prompt": "x"})
    assert "subject_reference" in assert_error(missing, 400, 2013)["base_resp"]["status_msg"]
    two = await gateway.client.post(
        CREATE,
        headers=auth(key),
        json={
            "model": "S2V-01",
            "prompt": "x",
            "subject_reference": [{"type": "character", "image": [IMAGE]}] * 2,
        },
    )
    assert_error(two, 400, 2013)


async def test_case_07_hailuo_1080p_for_10_seconds_is_rejected(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(
        CREATE,
        headers=auth(key),
        json={"model": "MiniMax-Hailuo-02", "prompt": "a storm", "resolution": "1080P", "duration": 10},
    )
    body = assert_error(response, 400, 2013)
    message = body["base_resp"]["status_msg"]
    assert message.startswith("invalid params") and "1080P" in message and "duration" in message


async def test_case_08_unknown_task_id(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    unknown = await gateway.client.get(QUERY, params={"task_id": "106916112212032"}, headers=auth(key))
    assert_error(unknown, 404, 2013)
    garbage = await gateway.client.get(QUERY, params={"task_id": "abc"}, headers=auth(key))
    assert_error(garbage, 400, 2013)
    missing = await gateway.client.get(QUERY, headers=auth(key))
    assert_error(missing, 400, 2013)
    no_file = await gateway.client.get(RETRIEVE, params={"file_id": "176844028768320"}, headers=auth(key))
    assert_error(no_file, 404, 2013)


async def test_case_09_missing_or_bad_authorization_is_401(gateway: Gateway) -> None:
    missing = await gateway.client.post(CREATE, json={"model": "T2V-01", "prompt": "x"})
    assert_error(missing, 401, 1004)
    bad = await gateway.client.post(
        CREATE, headers=auth("vg_test_not-a-key"), json={"model": "T2V-01", "prompt": "x"}
    )
    assert_error(bad, 401, 2049)
    query = await gateway.client.get(QUERY, params={"task_id": "1"})
    assert_error(query, 401, 1004)


async def test_case_10_prompt_over_2000_characters_is_2013(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    response = await gateway.client.post(
        CREATE, headers=auth(key), json={"model": "T2V-01", "prompt": "x" * 2001}
    )
    assert "prompt" in assert_error(response, 400, 2013)["base_resp"]["status_msg"]


async def test_case_11_callback_handshake_and_pushes(gateway: Gateway) -> None:
    """The hooks the webhook sender calls (the sender itself is tested in vidgate.delivery)."""
    key, principal = await gateway.account()
    hook = "https://example.com/minimax-hook"
    task = (await create(gateway, key, {"model": "T2V-01", "prompt": "a harbour", "callback_url": hook}))[
        "task_id"
    ]
    job_id = job_id_from_number(task)
    assert job_id is not None
    job = await gateway.services.jobs.get(principal, job_id)
    assert job.webhook_url == hook and job.request.webhook_url == hook

    body, echoed = minimax.webhook_handshake(hook)
    challenge = json.loads(body)["challenge"]
    assert isinstance(challenge, str) and len(challenge) >= 16
    assert echoed(json.dumps({"challenge": challenge}).encode())
    assert not echoed(b'{"challenge":"something else"}') and not echoed(b"not json")

    links = media_links_for(gateway)
    secret_hash = hash_key(key)
    assert minimax.render_webhook(job, "video.queued", links, secret_hash) is None
    pushed = minimax.render_webhook(job, "video.progress", links, secret_hash)
    assert pushed is not None
    progress = json.loads(pushed[0])
    assert set(progress) == {"task_id", "status", "file_id", "base_resp"}
    assert progress["status"] == "Processing" and progress["task_id"] == task

    await wait_done(gateway, key, task)
    job = await gateway.services.jobs.get(principal, job_id)
    pushed = minimax.render_webhook(job, "video.completed", links, secret_hash)
    assert pushed is not None and pushed[1]["Content-Type"] == "application/json"
    completed = json.loads(pushed[0])
    assert {"task_id", "status", "file_id", "base_resp"} <= set(completed)
    assert completed["status"] == "Success" and completed["file_id"] == minimax.file_id(job)

    plain = (await create(gateway, key, {"model": "T2V-01", "prompt": "no hook"}))["task_id"]
    plain_id = job_id_from_number(plain)
    assert plain_id is not None
    plain_job = await gateway.services.jobs.get(principal, plain_id)
    assert minimax.render_webhook(plain_job, "video.completed", links, secret_hash) is None


async def test_case_11_end_to_end_challenge_then_pushes(gateway: Gateway, receiver: Receiver) -> None:
    key, _ = await gateway.account()
    body = {"model": "T2V-01", "prompt": "a harbour", "callback_url": receiver.url}
    task = (await create(gateway, key, body))["task_id"]
    await wait_done(gateway, key, task)
    deadline = asyncio.get_running_loop().time() + 20
    while not any(p["status"] == "Success" for p in receiver.pushes()):
        assert asyncio.get_running_loop().time() < deadline, receiver.bodies
        await asyncio.sleep(0.05)
    assert set(receiver.bodies[0]) == {"challenge"}
    assert sum("challenge" in b for b in receiver.bodies) == 1
    for push in receiver.pushes():
        assert {"task_id", "status", "file_id", "base_resp"} <= set(push) and push["task_id"] == task
        assert push["status"] in ("Processing", "Success")
    final = receiver.pushes()[-1]
    assert final["status"] == "Success" and final["file_id"] and final["base_resp"]["status_code"] == 0


async def test_case_11_no_pushes_without_the_echo(gateway: Gateway, receiver: Receiver) -> None:
    receiver.echo = False
    key, _ = await gateway.account()
    body = {"model": "T2V-01", "prompt": "a harbour", "callback_url": receiver.url}
    task = (await create(gateway, key, body))["task_id"]
    await wait_done(gateway, key, task)
    await asyncio.sleep(0.5)
    assert [set(b) for b in receiver.bodies] == [{"challenge"}]


async def test_case_12_upstream_failure_is_fail_and_refunded(gateway: Gateway) -> None:
    key, principal = await gateway.account(credit="10")
    before = await balance(gateway, key)
    task = (await create(gateway, key, {"model": "T2V-01", "prompt": "simulate:fail"}))["task_id"]
    done = await wait_done(gateway, key, task)
    assert done["status"] == "Fail"
    # base_resp is the query's own status (it worked); the task's failure is beside it.
    assert done["base_resp"] == {"status_code": 0, "status_msg": "success"}
    assert "simulate:fail" in done["error_message"] and done["error_code"] == 2013
    assert not done.get("file_id")
    assert "video_width" not in done
    assert await balance(gateway, key) == before
    job_id = job_id_from_number(task)
    assert job_id is not None
    job = await gateway.services.jobs.get(principal, job_id)
    no_file = await gateway.client.get(RETRIEVE, params={"file_id": minimax.file_id(job)}, headers=auth(key))
    assert_error(no_file, 404, 2013)


# ------------------------------------------------------------------ beyond the numbered cases


async def test_job_is_readable_in_the_native_api(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    task = (
        await create(gateway, key, {"model": "MiniMax-Hailuo-02", "prompt": "dunes", "resolution": "512P"})
    )["task_id"]
    await wait_done(gateway, key, task)
    job_id = job_id_from_number(task)
    native = await gateway.client.get(f"/v1/videos/{job_id}", headers=auth(key))
    assert native.status_code == 200
    body = native.json()
    assert body["vidgate_status"] == "succeeded" and body["dialect"] == "minimax"
    assert body["model"] == "MiniMax-Hailuo-02" and body["resolution"] == "512p"
    assert body["media"]["height"] == 512


async def test_content_policy_refusal_is_answered_at_create(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    before = await balance(gateway, key)
    response = await gateway.client.post(
        CREATE, headers=auth(key), json={"model": "T2V-01", "prompt": "simulate:policy"}
    )
    assert_error(response, 400, 1026)
    rejected = await gateway.client.post(
        CREATE, headers=auth(key), json={"model": "T2V-01", "prompt": "simulate:reject"}
    )
    assert "simulate:reject" in assert_error(rejected, 400, 2013)["base_resp"]["status_msg"]
    assert await balance(gateway, key) == before


async def test_insufficient_balance_is_1008(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="0.01")
    response = await gateway.client.post(CREATE, headers=auth(key), json={"model": "T2V-01", "prompt": "x"})
    assert_error(response, 400, 1008)


async def test_bad_fields_are_2013(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": "T2V-03", "prompt": "x"}, "model"),
        ({"prompt": "x"}, "model"),
        ({"model": "T2V-01", "prompt": "x", "duration": "6"}, "duration"),
        ({"model": "T2V-01", "prompt": "x", "duration": 10}, "duration"),
        ({"model": "T2V-01", "prompt": "x", "resolution": "768P"}, "720P"),
        ({"model": "T2V-01", "prompt": "x", "first_frame_image": IMAGE}, "first_frame_image"),
        ({"model": "T2V-01", "prompt": ""}, "prompt"),
    ]
    for body, needle in cases:
        response = await gateway.client.post(CREATE, headers=auth(key), json=body)
        message = assert_error(response, 400, 2013)["base_resp"]["status_msg"]
        assert needle in message, (body, message)
    not_json = await gateway.client.post(
        CREATE, headers={**auth(key), "Content-Type": "application/json"}, content=b"{"
    )
    assert_error(not_json, 400, 2013)


async def test_i2v_and_first_last_frame_are_accepted(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    body = await create(
        gateway,
        key,
        {
            "model": "MiniMax-Hailuo-02",
            "prompt": "the door opens [Push in]",
            "first_frame_image": IMAGE,
            "last_frame_image": "https://example.com/end.png",
            "duration": 10,
            "resolution": "768P",
            "prompt_optimizer": False,
        },
    )
    job_id = job_id_from_number(body["task_id"])
    assert job_id is not None
    job = await gateway.services.jobs.get(principal, job_id)
    assert job.request.first_frame == IMAGE and job.request.last_frame == "https://example.com/end.png"
    assert job.request.duration_s == 10 and job.request.resolution == "768p"
    assert job.request.provider_options == {"prompt_optimizer": False}


async def test_unknown_route_and_rate_limit_use_the_envelope(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    unknown = await gateway.client.get("/minimax/v1/nothing", headers=auth(key))
    assert_error(unknown, 404, 2013)
    rendered = minimax.render_error(RateLimited("slow down", retry_after_s=7, limit=60, reset_at=0))
    assert rendered.status_code == 429 and rendered.headers["Retry-After"] == "7"
    # Through the rate-limit middleware: an account limited to 2 requests a minute
    # (a fresh one: the limiter caches an account's limit for a few seconds).
    key, principal = await gateway.account("limited")
    async with gateway.services.db.transaction() as conn:
        await account_store.update_account(conn, principal.account_id, rate_limit_per_minute=2)
    statuses = []
    for _ in range(3):
        response = await gateway.client.get(QUERY, params={"task_id": "1"}, headers=auth(key))
        statuses.append(response.status_code)
    assert statuses == [404, 404, 429]
    body = assert_error(response, 429, 1002)
    assert int(response.headers["Retry-After"]) >= 1 and body["base_resp"]["status_msg"]


# ------------------------------------------------------------------ helpers


def media_links_for(gateway: Gateway) -> MediaLinks:
    svc = gateway.services
    return MediaLinks("http://testserver", svc.signing_secret, svc.settings.signed_url_ttl_s)
