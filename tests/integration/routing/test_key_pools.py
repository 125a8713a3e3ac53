"""A provider with a pool of API keys, against a fake fal that knows several accounts.

The fake accepts only the keys it was given, and a request id belongs to the key that
created it (another key polling it gets fal's 404), so a job whose polls or downloads
used the wrong key would fail here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.conftest import Gateway, auth
from tests.integration.routing.conftest import live_gateway
from vidgate.config import Settings
from vidgate.store import jobs as job_store
from vidgate.store.attempts import of_job
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.fal import FalFake
from vidgate.testing.server import serve_in_thread
from vidgate.worker.providers import ProviderPool

KLING_3_PRO = {"model": "kling-3-pro", "prompt": "a paper boat on a river", "duration": 5}


class AccountsFal(FalFake):
    """fal with several accounts: each key sees only the requests it made."""

    def __init__(self, keys: list[str], **options: Any) -> None:
        super().__init__(api_key=keys[0], **options)
        self.keys = set(keys)
        self.owners: dict[str, str] = {}  # request id -> the key that created it
        self.calls: list[tuple[str, str, str]] = []  # (method, path, key)

    @staticmethod
    def key_of(request: Request) -> str:
        return request.headers.get("authorization", "").removeprefix("Key ")

    async def _enter(self, request: Request, *, submit: bool) -> Response | None:
        if early := await self.preamble(request, submit=submit):
            return early
        key = self.key_of(request)
        self.calls.append((request.method, request.url.path, key))
        if key not in self.keys:
            return JSONResponse({"detail": "No user found for Key ID and Secret"}, 401)
        request_id = request.path_params.get("request_id")
        if request_id is not None and self.owners.get(request_id, key) != key:
            return JSONResponse({"detail": "Request not found"}, 404)
        return None

    async def _submit(self, request: Request) -> Response:
        response = await super()._submit(request)
        if response.status_code == 200:
            self.owners[json.loads(bytes(response.body))["request_id"]] = self.key_of(request)
        return response

    def keys_used_for(self, request_id: str) -> set[str]:
        return {key for _, path, key in self.calls if f"/requests/{request_id}" in path}


@pytest.fixture
def fal() -> Iterator[AccountsFal]:
    fake = AccountsFal(["key-one", "key-two"], script=FakeScript(latency_s=0.3, video_seconds=5))
    with serve_in_thread(fake.app()) as base:
        fake.base_url = base
        yield fake


async def _run(gateway: Gateway, key: str) -> dict[str, Any]:
    created = await gateway.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)
    assert created.status_code == 200, created.text
    done = await gateway.wait_terminal(f"/v1/videos/{created.json()['id']}", key)
    assert done["vidgate_status"] == "succeeded", done
    return done


async def _keys_of(gateway: Gateway, job_id: str) -> tuple[str | None, list[tuple[str | None, str]], str]:
    """(jobs.upstream_key, [(attempt key, outcome)], upstream id) of a job."""
    async with gateway.services.db.read() as conn:
        job = await job_store.get_job(conn, job_id)
        attempts = await of_job(conn, job_id)
    assert job is not None and job.upstream_id is not None
    return job.upstream_key, [(a.upstream_key, a.outcome) for a in attempts], job.upstream_id


@pytest.fixture
async def two_keys(settings: Settings, fal: AccountsFal) -> AsyncIterator[Gateway]:
    env = {"VIDGATE_FAL_API_KEYS": "key-one,key-two", "VIDGATE_FAL_BASE_URL": fal.base_url}
    async for gateway in live_gateway(settings, env):
        yield gateway


async def test_a_pool_of_two_keys_is_used_in_turn_and_each_job_keeps_its_key(
    two_keys: Gateway, fal: AccountsFal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, _ = await two_keys.account("live-co", credit="10", mode="live")
    first, second, third = [await _run(two_keys, key) for _ in range(3)]
    job_key, attempts, upstream_id = await _keys_of(two_keys, first["id"])
    assert job_key == "fal#1" and attempts == [("fal#1", "accepted")]
    # every later call for the job (status polls, the result) went with the key that made it
    assert fal.keys_used_for(upstream_id) == {"key-one"}
    assert fal.owners[upstream_id] == "key-one"
    job_key, attempts, upstream_id = await _keys_of(two_keys, second["id"])
    assert job_key == "fal#2" and attempts == [("fal#2", "accepted")]
    assert fal.keys_used_for(upstream_id) == {"key-two"}
    assert (await _keys_of(two_keys, third["id"]))[0] == "fal#1"  # round and round
    # labels, never secrets, in what the gateway says
    assert "key-one" not in caplog.text and "key-two" not in caplog.text


@pytest.fixture
async def bad_then_good(settings: Settings, fal: AccountsFal) -> AsyncIterator[Gateway]:
    env = {"VIDGATE_FAL_API_KEYS": "revoked-key,key-two", "VIDGATE_FAL_BASE_URL": fal.base_url}
    async for gateway in live_gateway(settings, env):
        yield gateway


async def test_a_key_refused_as_unauthenticated_is_skipped_while_the_other_carries_on(
    bad_then_good: Gateway, fal: AccountsFal
) -> None:
    key, _ = await bad_then_good.account("live-co", credit="10", mode="live")
    first = await _run(bad_then_good, key)
    job_key, attempts, upstream_id = await _keys_of(bad_then_good, first["id"])
    # the first key's 401 moved the same submit on to the second key: no failure, no delay
    assert attempts == [("fal#1", "refused"), ("fal#2", "accepted")] and job_key == "fal#2"
    assert fal.keys_used_for(upstream_id) == {"key-two"}
    for _ in range(2):  # the refused key sits out: the next jobs go straight to the other
        done = await _run(bad_then_good, key)
        assert (await _keys_of(bad_then_good, done["id"]))[1] == [("fal#2", "accepted")]
    assert [c[2] for c in fal.calls].count("revoked-key") == 1  # tried once, then left alone
    async with bad_then_good.services.db.read() as conn:
        refused = (await of_job(conn, first["id"]))[0]
    assert refused.error_code == "upstream_auth_error"


async def test_every_key_refused_fails_the_job_with_the_reason(settings: Settings, fal: AccountsFal) -> None:
    env = {"VIDGATE_FAL_API_KEYS": "old-1,old-2", "VIDGATE_FAL_BASE_URL": fal.base_url}
    async for gateway in live_gateway(settings, env):
        key, _ = await gateway.account("live-co", credit="10", mode="live")
        created = (await gateway.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
        done = await gateway.wait_terminal(f"/v1/videos/{created['id']}", key)
        assert done["vidgate_status"] == "failed" and done["error"]["code"] == "upstream_auth_error"
        assert done["cost"]["refunded"] == done["cost"]["estimated"]
        assert {c[2] for c in fal.calls} == {"old-1", "old-2"}


def test_a_key_pool_comes_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "vidgate.toml"
    config.write_text(
        '[providers.fal]\napi_keys = ["file-1", "file-2", "file-3"]\n'
        '[providers.kling]\napi_keys = ["ak1", "ak2"]\nsecret_keys = ["sk1", "sk2"]\n'
    )
    settings = Settings(data_dir=tmp_path, config=config)
    pool = ProviderPool(settings, httpx.AsyncClient(), env={"VIDGATE_RUNWAY_API_KEYS": "r1,r2"})
    assert pool.enabled == ["fal", "kling", "runway"]
    fal = pool.keys("fal")
    assert fal is not None and fal.labels == ["fal#1", "fal#2", "fal#3"]
    assert [k.ctx.api_key for k in fal.keys if k.ctx] == ["file-1", "file-2", "file-3"]
    kling = pool.keys("kling")
    assert kling is not None
    assert [(k.ctx.api_key, k.ctx.options["secret_key"]) for k in kling.keys if k.ctx] == [
        ("ak1", "sk1"),
        ("ak2", "sk2"),
    ]
    runway = pool.keys("runway")
    assert runway is not None and runway.labels == ["runway#1", "runway#2"]
    assert pool.adapter_for("fal", "fal#3") is fal.keys[2].adapter
    assert pool.adapter_for("fal", None) is fal.keys[0].adapter  # a job from before key pools
