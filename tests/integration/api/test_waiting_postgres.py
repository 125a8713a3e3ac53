"""Waking waiters across processes on PostgreSQL (LISTEN/NOTIFY), and surviving a lost
listening connection. The "other process" is a second ``Database`` + ``JobLifecycle``
with its own ``JobChanges`` (its own origin), as a separate ``vidgate worker`` has.

No timing assertions: each waiter asks for ``Prefer: wait=60``, and while the listener
is connected it does not re-read on its own, so only a notification can end its wait
early with the ended video; a missed one shows as an unfinished video.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import PG_URL, Gateway, auth
from vidgate.catalog.loader import load_catalog
from vidgate.domain.states import JobStatus
from vidgate.service.lifecycle import JobLifecycle
from vidgate.store.changes import JobChanges
from vidgate.store.engine import Database
from vidgate.store.listen import APPLICATION_NAME, JobListener

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs VIDGATE_TEST_DATABASE_URL (PostgreSQL)"),
]

VIDEO = {"model": "sora-2", "prompt": "a lighthouse", "seconds": "4", "size": "1280x720"}


async def eventually(check: Callable[[], bool], *, timeout_s: float = 15.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


class OtherProcess:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.changes = JobChanges(cross_process=True)
        self.lifecycle = JobLifecycle(self.db, load_catalog(None), changes=self.changes)

    async def cancel(self, job_id: str) -> None:
        assert await self.lifecycle.finish(
            job_id, JobStatus.CANCELED, error_code="canceled", error_message="by the other process"
        )


@pytest.fixture
async def other(idle_gateway: Gateway) -> AsyncIterator[OtherProcess]:
    found = OtherProcess(idle_gateway.services.db.url)
    try:
        yield found
    finally:
        await found.db.dispose()


def listener_of(gateway: Gateway) -> JobListener:
    listener = gateway.runtime.listener
    assert listener is not None, "an API process on PostgreSQL listens"
    return listener


async def waiting_retrieve(gateway: Gateway, key: str, job_id: str) -> asyncio.Task[Any]:
    changes = gateway.services.lifecycle.changes
    before = changes.waiting
    task = asyncio.create_task(
        gateway.client.get(f"/v1/videos/{job_id}", headers={**auth(key), "Prefer": "wait=60"}, timeout=90)
    )
    await eventually(lambda: changes.waiting > before, what="the retrieve is waiting")
    return task


async def test_a_change_in_another_process_wakes_a_waiter(idle_gateway: Gateway, other: OtherProcess) -> None:
    gateway = idle_gateway
    assert await listener_of(gateway).wait_listening(15)
    key, _ = await gateway.account(credit="10")
    created = (await gateway.client.post("/v1/videos", headers=auth(key), json=VIDEO)).json()
    task = await waiting_retrieve(gateway, key, created["id"])
    await other.cancel(created["id"])
    answer = await task
    assert answer.status_code == 200
    assert answer.json()["vidgate_status"] == "canceled", answer.json()


async def test_a_rolled_back_change_is_never_announced(idle_gateway: Gateway, other: OtherProcess) -> None:
    gateway = idle_gateway
    assert await listener_of(gateway).wait_listening(15)
    changes = gateway.services.lifecycle.changes

    class Abandoned(Exception):
        pass

    with changes.watch("video_rolled_back") as rolled_back, changes.watch("video_committed") as committed:

        async def abandon() -> None:
            async with other.db.transaction() as conn:
                await other.changes.announce(conn, "video_rolled_back")
                raise Abandoned

        with pytest.raises(Abandoned):
            await abandon()
        async with other.db.transaction() as conn:
            await other.changes.announce(conn, "video_committed")
        # Notifications arrive in commit order: once the later one is here, the earlier
        # one would have been too.
        assert await committed.changed(30)
        assert not await rolled_back.changed(0)


async def test_the_listener_reconnects_after_its_backend_is_terminated(
    idle_gateway: Gateway, other: OtherProcess
) -> None:
    gateway = idle_gateway
    listener = listener_of(gateway)
    changes = gateway.services.lifecycle.changes
    assert await listener.wait_listening(15)
    key, _ = await gateway.account(credit="10")
    created = (await gateway.client.post("/v1/videos", headers=auth(key), json=VIDEO)).json()
    # A waiter from before the drop: it must still answer (fallback re-reads, then wake-ups).
    early = await waiting_retrieve(gateway, key, created["id"])

    async with other.db.transaction() as conn:
        terminated = (
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
        ).all()
    assert terminated == [(True,)]
    await eventually(lambda: listener.connects >= 2 and changes.listening, what="the listener is back")

    second = (await gateway.client.post("/v1/videos", headers=auth(key), json=VIDEO)).json()
    late = await waiting_retrieve(gateway, key, second["id"])
    await other.cancel(second["id"])
    await other.cancel(created["id"])
    for task in (late, early):
        answer = await task
        assert answer.status_code == 200 and answer.json()["vidgate_status"] == "canceled"
