"""The per-database key cache: one store read per key per TTL, local changes seen at once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway, auth
from vidgate.api import keycache
from vidgate.api.keycache import key_cache
from vidgate.billing.accounts import revoke_key
from vidgate.store import accounts as account_store


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = account_store.key_by_hash

    async def counted(conn: Any, digest: str) -> Any:
        reads.append(digest)
        return await real(conn, digest)

    monkeypatch.setattr(keycache.account_store, "key_by_hash", counted)
    return reads


async def test_a_key_is_read_once_for_many_requests_and_creates_keep_it(
    idle_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = await idle_gateway.account("cached")
    key_cache(idle_gateway.services.db).ttl_s = 3600  # no expiry during the test
    reads = count_reads(monkeypatch)
    body = {"model": "kling-3-pro", "prompt": "a boat", "seconds": "5"}
    created = await idle_gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert created.status_code == 200
    for _ in range(5):  # the rate limiter and authentication share the cache
        polled = await idle_gateway.client.get(f"/v1/videos/{created.json()['id']}", headers=auth(key))
        assert polled.status_code == 200
    # the create wrote the key's spend: not something the cache holds, so no re-read
    assert len(reads) == 1


async def test_a_revocation_in_this_process_is_seen_at_once(
    idle_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, principal = await idle_gateway.account("revoked-later")
    key_cache(idle_gateway.services.db).ttl_s = 3600
    assert (await idle_gateway.client.get("/v1/account", headers=auth(key))).status_code == 200
    async with idle_gateway.services.db.transaction() as conn:
        await revoke_key(conn, principal.key_id)
    assert (await idle_gateway.client.get("/v1/account", headers=auth(key))).status_code == 401


async def test_entries_expire_after_the_ttl(idle_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process's revocation is seen once the entry expires (the clock is moved, not waited)."""
    key, _ = await idle_gateway.account("expiring")
    reads = count_reads(monkeypatch)
    now = [1000.0]
    monkeypatch.setattr(keycache.time, "monotonic", lambda: now[0])
    assert (await idle_gateway.client.get("/v1/account", headers=auth(key))).status_code == 200
    assert (await idle_gateway.client.get("/v1/account", headers=auth(key))).status_code == 200
    assert len(reads) == 1
    now[0] += keycache.DEFAULT_TTL_S + 0.01
    assert (await idle_gateway.client.get("/v1/account", headers=auth(key))).status_code == 200
    assert len(reads) == 2
