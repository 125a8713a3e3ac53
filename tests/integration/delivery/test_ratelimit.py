"""Rate limits per account: 429 with the headers, dialect key forms, route limits, shared Redis."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Gateway, auth
from vidgate.billing.accounts import ensure_account, issue_key
from vidgate.config import Settings
from vidgate.runtime.app import create_app
from vidgate.store.engine import open_database
from vidgate.store.migrate import migrate
from vidgate.testing.server import serve_in_thread

REDIS_URL = os.environ.get("VIDGATE_TEST_REDIS_URL")


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Gateway]:
    """A gateway limited to 60 requests per minute, counting in memory."""
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 60, "redis_url": None}), env={})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Gateway(app.state.services, client, app.state.runtime)


async def test_the_61st_request_in_a_minute_gets_429_with_the_headers(limited: Gateway) -> None:
    key, _ = await limited.account()
    for n in range(60):
        response = await limited.client.get("/v1/account", headers=auth(key))
        assert response.status_code == 200, (n, response.text)
        assert response.headers["X-RateLimit-Limit"] == "60"
        assert response.headers["X-RateLimit-Remaining"] == str(59 - n)
    refused = await limited.client.get("/v1/account", headers=auth(key))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.headers["X-RateLimit-Limit"] == "60"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    reset = int(refused.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61
    assert 1 <= int(refused.headers["Retry-After"]) <= 61

    other, _ = await limited.account("another-account")  # another account has its own count
    assert (await limited.client.get("/v1/account", headers=auth(other))).status_code == 200


async def test_unauthenticated_requests_are_left_to_auth(limited: Gateway) -> None:
    for _ in range(70):
        response = await limited.client.get("/v1/account")
        assert response.status_code == 401
        assert "X-RateLimit-Limit" not in response.headers
    assert (await limited.client.get("/v1/account", headers=auth("vg_test_unknown"))).status_code == 401


async def test_one_count_across_dialect_key_forms(limited: Gateway) -> None:
    key, _ = await limited.account()
    forms = [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"Bearer tl-{key}"},
        {"Authorization": f"Bearer ky-{key}"},
        {"X-API-Key": f"afk_{key}"},
    ]
    remaining = []
    for headers in forms:
        response = await limited.client.get("/v1/models", headers=headers)
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [59, 58, 57, 56]


async def test_an_accounts_own_limit_wins(limited: Gateway) -> None:
    async with limited.services.db.transaction() as conn:
        account = await ensure_account(conn, "small", rate_limit_per_minute=3)
        key = (await issue_key(conn, account, mode="test")).secret
    codes = [(await limited.client.get("/v1/models", headers=auth(key))).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


async def test_venice_route_limit_and_headers(limited: Gateway) -> None:
    async with limited.services.db.transaction() as conn:
        account = await ensure_account(conn, "venice-user", rate_limit_per_minute=1000)
        key = (await issue_key(conn, account, mode="test")).secret
    path = "/venice/api/v1/video/queue"
    for _ in range(40):
        response = await limited.client.post(path, json={}, headers=auth(key))
        assert response.status_code != 429
        assert response.headers["x-ratelimit-limit-requests"] == "40"
    refused = await limited.client.post(path, json={}, headers=auth(key))
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(refused.headers["x-ratelimit-reset-requests"]) > time.time()
    assert "Retry-After" in refused.headers
    other = await limited.client.get("/v1/models", headers=auth(key))  # other routes: the account limit
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Limit"] == "1000"


async def test_limits_off_when_zero(gateway: Gateway) -> None:
    key, _ = await gateway.account()  # the shared settings have rate_limit_per_minute=0
    for _ in range(70):
        response = await gateway.client.get("/v1/models", headers=auth(key))
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


async def test_unreachable_redis_lets_requests_through(settings: Settings) -> None:
    broken = settings.model_copy(update={"rate_limit_per_minute": 2, "redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken, env={})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            key, _ = await Gateway(app.state.services, client, app.state.runtime).account()
            codes = [(await client.get("/v1/account", headers=auth(key))).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 200]


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs a Redis server: set VIDGATE_TEST_REDIS_URL")
async def test_two_servers_sharing_redis_enforce_one_limit(settings: Settings, tmp_path: Path) -> None:
    shared = settings.model_copy(update={"rate_limit_per_minute": 60, "redis_url": REDIS_URL})
    db = open_database(shared)
    await migrate(db)
    async with db.transaction() as conn:
        account = await ensure_account(conn, f"redis-{tmp_path.name}")
        key = (await issue_key(conn, account, mode="test")).secret
    await db.dispose()

    first, second = create_app(shared, run_worker=False, env={}), create_app(shared, run_worker=False, env={})
    with serve_in_thread(first) as url_a, serve_in_thread(second) as url_b:
        async with httpx.AsyncClient(timeout=10) as client:

            async def get(base: str) -> httpx.Response:
                return await client.get(f"{base}/v1/account", headers=auth(key))

            # One request to each first: FastAPI builds each app's routes on first use,
            # and two apps in one process (threads here, never in a deployment) building
            # the same shared routers at once race inside pydantic. Both answers count.
            warm = [await get(url_a), await get(url_b)]
            answers = warm + list(await asyncio.gather(*(get(url_a if n % 2 else url_b) for n in range(58))))
            assert [r.status_code for r in answers] == [200] * 60
            refused = [await get(url_a), await get(url_b)]
    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].headers["X-RateLimit-Remaining"] == "0"
    assert refused[1].headers["X-RateLimit-Limit"] == "60"
