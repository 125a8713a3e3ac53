"""MiniMax: int64 ids, and native MiniMax's error semantics at ``/minimax-native``.

Native MiniMax answers business errors with HTTP 200 and a ``base_resp`` code; its
client (``minimax-mcp``) calls ``raise_for_status()`` and then checks
``base_resp.status_code`` before it reads a task's ``status``. ``NativeClient``
below does exactly that.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, auth
from vidgate.api.dialects import _minimax_ids as ids
from vidgate.store import accounts as account_store

NATIVE = "/minimax-native"
SEED = "/minimax"


def as_int64(value: str) -> int:
    """What a Go/Java/Rust client does with the id: parse it as a signed 64-bit integer."""
    number = int(value)
    struct.pack(">q", number)  # raises struct.error outside int64
    return number


class MiniMaxError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class NativeClient:
    """The native client's checks: HTTP status first, then ``base_resp``."""

    def __init__(self, http: httpx.AsyncClient, root: str, key: str) -> None:
        self.http, self.root, self.key = http, root, key

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.http.request(method, self.root + path, headers=auth(self.key), **kwargs)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if body["base_resp"]["status_code"] != 0:
            raise MiniMaxError(body["base_resp"]["status_code"], body["base_resp"]["status_msg"])
        return body

    async def create(self, **body: Any) -> str:
        created = await self.call("POST", "/v1/video_generation", json=body)
        task: str = created["task_id"]
        return task

    async def query(self, task_id: str) -> dict[str, Any]:
        return await self.call("GET", "/v1/query/video_generation", params={"task_id": task_id})

    async def wait(self, task_id: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            body = await self.query(task_id)
            if body["status"] in ("Success", "Fail"):
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} did not finish: {body}")
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("root", [SEED, NATIVE])
async def test_ids_are_int64_numbers_like_minimaxs(gateway: Gateway, root: str) -> None:
    key, _ = await gateway.account()
    client = NativeClient(gateway.client, root, key)
    tasks = [await client.create(model="T2V-01", prompt=f"harbour {n}") for n in range(3)]
    for task in tasks:
        assert 15 <= len(task) <= 19 and as_int64(task) > 0
    done = await client.wait(tasks[0])
    assert done["status"] == "Success" and as_int64(done["task_id"]) == as_int64(tasks[0])
    file_id = done["file_id"]
    assert 15 <= len(file_id) <= 19 and as_int64(file_id) > 0 and file_id != tasks[0]
    retrieved = await client.call("GET", "/v1/files/retrieve", params={"file_id": file_id})
    assert as_int64(retrieved["file"]["file_id"]) == as_int64(file_id)
    video = await gateway.client.get(retrieved["file"]["download_url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


async def test_a_job_from_another_api_reads_under_its_long_number(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    created = await gateway.client.post(
        "/v1/videos", json={"model": "T2V-01", "prompt": "from the native API"}, headers=auth(key)
    )
    assert created.status_code in (200, 201), created.text
    job_id = created.json()["id"]
    task = ids.task_id(job_id)
    assert len(task) > 19 and ids.job_id_of_task(task) == job_id
    client = NativeClient(gateway.client, SEED, key)
    assert (await client.query(task))["task_id"] == task


def test_the_id_maps_are_bijections() -> None:
    for _ in range(200):
        job_id = ids.new_job_id()
        task, file_id = ids.task_id(job_id), ids.file_id(job_id)
        assert ids.job_id_of_task(task) == job_id and ids.job_id_of_file(file_id) == job_id
        assert as_int64(task) > 0 and as_int64(file_id) >= 0 and len(task) in (18, 19)
    legacy = "video_" + "4f" * 16
    assert ids.job_id_of_task(ids.task_id(legacy)) == legacy
    assert ids.job_id_of_file(ids.file_id(legacy)) == legacy
    assert ids.job_id_of_task("abc") is None and ids.job_id_of_file("1" * 41) is None


async def test_a_failed_task_is_base_resp_0_with_fail_and_reason(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    client = NativeClient(gateway.client, NATIVE, key)
    done = await client.wait(await client.create(model="T2V-01", prompt="simulate:fail"))
    assert done["status"] == "Fail" and done["base_resp"]["status_code"] == 0
    assert "simulate:fail" in done["error_message"] and isinstance(done["error_code"], int)


async def test_native_errors_are_http_200_with_base_resp_codes(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    poor, _ = await gateway.account("poor", credit="0.01")
    client = NativeClient(gateway.client, NATIVE, key)
    cases: list[tuple[str, str, dict[str, Any], str | None, int]] = [
        ("POST", "/v1/video_generation", {"json": {"model": "T2V-03", "prompt": "x"}}, key, 2013),
        (
            "POST",
            "/v1/video_generation",
            {"json": {"model": "T2V-01", "prompt": "x", "duration": 10}},
            key,
            2013,
        ),
        (
            "POST",
            "/v1/video_generation",
            {"json": {"model": "T2V-01", "prompt": "simulate:policy"}},
            key,
            1026,
        ),
        ("POST", "/v1/video_generation", {"json": {"model": "T2V-01", "prompt": "x"}}, poor, 1008),
        ("POST", "/v1/video_generation", {"json": {"model": "T2V-01", "prompt": "x"}}, None, 1004),
        ("GET", "/v1/query/video_generation", {"params": {"task_id": "106916112212032"}}, key, 2013),
        ("GET", "/v1/query/video_generation", {"params": {"task_id": "abc"}}, key, 2013),
        ("GET", "/v1/files/retrieve", {"params": {"file_id": "176844028768320"}}, key, 2013),
    ]
    for method, path, kwargs, who, code in cases:
        headers = auth(who) if who else {}
        native = await gateway.client.request(method, NATIVE + path, headers=headers, **kwargs)
        assert native.status_code == 200, (path, native.text)
        assert native.json()["base_resp"]["status_code"] == code, (path, native.json())
        seed = await gateway.client.request(method, SEED + path, headers=headers, **kwargs)
        assert seed.status_code >= 400 and seed.json()["base_resp"]["status_code"] == code, (path, seed.text)
    with pytest.raises(MiniMaxError) as refused:
        await client.create(model="T2V-01", prompt="x", duration=10)
    assert refused.value.code == 2013
    # A path that does not exist is still a 404 (no API behind it to answer).
    assert (await gateway.client.get(NATIVE + "/v1/nothing", headers=auth(key))).status_code == 404


async def test_native_rate_limit_is_1002_with_retry_after(gateway: Gateway) -> None:
    key, principal = await gateway.account("limited")
    async with gateway.services.db.transaction() as conn:
        await account_store.update_account(conn, principal.account_id, rate_limit_per_minute=1)
    path = NATIVE + "/v1/query/video_generation"
    first = await gateway.client.get(path, params={"task_id": "1"}, headers=auth(key))
    second = await gateway.client.get(path, params={"task_id": "1"}, headers=auth(key))
    assert first.status_code == 200 and first.json()["base_resp"]["status_code"] == 2013
    assert second.status_code == 200 and second.json()["base_resp"]["status_code"] == 1002
    assert int(second.headers["Retry-After"]) >= 1
