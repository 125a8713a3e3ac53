"""The readiness checks themselves: concurrent, each bounded in time, failures named."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from vidgate.config import Settings
from vidgate.observability.health import Probe, Readiness
from vidgate.runtime.app import create_app
from vidgate.runtime.roles import Role


async def test_a_hanging_check_is_cut_at_its_bound_and_the_others_still_answer() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    async def refuses() -> None:
        raise ConnectionRefusedError("[Errno 111] Connect call failed ('127.0.0.1', 1)\nsecond line")

    async def answers() -> None:
        await asyncio.sleep(0)

    readiness = Readiness(
        [Probe("database", hangs), Probe("redis", refuses), Probe("storage", answers)], timeout_s=0.3
    )
    started = time.monotonic()
    results = {r.name: r for r in await readiness.check()}
    elapsed = time.monotonic() - started
    assert elapsed < 1.5  # concurrent, and bounded: not 0.3 s per check in a row, never forever
    assert results["database"].ok is False and results["database"].error == "no answer within 0.3 s"
    assert results["redis"].ok is False
    assert (
        results["redis"].error == "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 1)"
    )
    assert results["storage"].ok is True and results["storage"].error is None


REDIS_URL = os.environ.get("VIDGATE_TEST_REDIS_URL")


async def _readyz(settings: Settings, redis_url: str) -> httpx.Response:
    app = create_app(
        settings.model_copy(update={"redis_url": redis_url}), role=Role.API, run_worker=False, env={}
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        return await c.get("/readyz")


async def test_readyz_names_redis_when_it_is_configured_and_unreachable(settings: Settings) -> None:
    from vidgate.testing.server import free_port

    answer = await _readyz(settings, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    assert answer.status_code == 503, answer.text
    assert answer.json()["failed"] == ["redis"]
    assert answer.json()["checks"]["database"]["ok"] is True


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs a Redis server: set VIDGATE_TEST_REDIS_URL")
async def test_readyz_checks_a_configured_redis(settings: Settings) -> None:
    assert REDIS_URL is not None
    answer = await _readyz(settings, REDIS_URL)
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["redis"]["ok"] is True
