"""Media retention: purged past ``media_expires_at`` (or the account's own retention), job says so."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Gateway, auth
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.service.retention import purge_once
from vidgate.store import accounts as account_store
from vidgate.store import jobs as job_store


async def _finished_video(gateway: Gateway, key: str) -> dict[str, Any]:
    body = {"model": "sora-2", "prompt": "a sunrise", "seconds": "4"}
    video = (await gateway.client.post("/v1/videos", json=body, headers=auth(key))).json()
    done = await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    assert done["vidgate_status"] == "succeeded", done
    return done


async def _stored(gateway: Gateway, job_id: str) -> bool:
    return await gateway.services.storage.size(f"videos/{job_id}/video.mp4") is not None


async def _expire(gateway: Gateway, job_id: str, *, days_ago: float) -> None:
    async with gateway.services.db.transaction() as conn:
        past = utcnow() - timedelta(days=days_ago)
        await job_store.update_job(conn, job_id, now=utcnow(), media_expires_at=past, completed_at=past)


async def test_expired_media_are_purged_and_the_job_says_so(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    kept, expired = await _finished_video(gateway, key), await _finished_video(gateway, key)
    assert await _stored(gateway, expired["id"])
    await _expire(gateway, expired["id"], days_ago=0.01)

    purged = await purge_once(gateway.services.db, gateway.services.storage)
    assert purged == [expired["id"]]
    assert not await _stored(gateway, expired["id"])
    assert await _stored(gateway, kept["id"])

    shown = (await gateway.client.get(f"/v1/videos/{expired['id']}", headers=auth(key))).json()
    assert shown["media"]["deleted"] is True
    assert shown["video_url"] is None and shown["expires_at"] is None
    content = await gateway.client.get(f"/v1/videos/{expired['id']}/content", headers=auth(key))
    assert content.status_code == 404
    assert await purge_once(gateway.services.db, gateway.services.storage) == []  # nothing twice


async def test_an_accounts_own_retention_overrides_the_default(gateway: Gateway) -> None:
    key, principal = await gateway.account()
    video = await _finished_video(gateway, key)
    await _expire(gateway, video["id"], days_ago=8)  # past the default 7 days
    async with gateway.services.db.transaction() as conn:
        await account_store.update_account(conn, principal.account_id, retention_days=30)
    assert await purge_once(gateway.services.db, gateway.services.storage) == []
    assert await _stored(gateway, video["id"])

    async with gateway.services.db.transaction() as conn:
        await account_store.update_account(conn, principal.account_id, retention_days=1)
    fresh = await _finished_video(gateway, key)  # default expiry in 7 days, but the account keeps 1
    async with gateway.services.db.transaction() as conn:
        await job_store.update_job(conn, fresh["id"], now=utcnow(), completed_at=utcnow() - timedelta(days=2))
    assert sorted(await purge_once(gateway.services.db, gateway.services.storage)) == sorted(
        [video["id"], fresh["id"]]
    )


class TestBackgroundPurger:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"extra": {**settings.extra, "retention_interval_s": "0.05"}})

    async def test_the_purger_runs_with_the_app(self, gateway: Gateway) -> None:
        key, _ = await gateway.account()
        video = await _finished_video(gateway, key)
        await _expire(gateway, video["id"], days_ago=0.01)
        # The purger deletes the files first and marks the job last: wait for that last write,
        # after which it writes nothing more for this job, then look at both.
        async with asyncio.timeout(10):
            while True:
                async with gateway.services.db.read() as conn:
                    job = await job_store.get_job(conn, video["id"])
                assert job is not None
                if job.media_deleted_at is not None:
                    break
                await asyncio.sleep(0.05)
        assert not await _stored(gateway, video["id"])
