"""Far fewer polls (issue 15): ``Prefer: wait``, ETag / If-None-Match, and long polls.

No timing assertions: each wait is long enough that a missed wake-up would show as a
wrong answer (a job still unfinished, a 304), never as a slow one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import PG_URL, Gateway, auth
from vidgate.api.waiting import prefer_wait
from vidgate.domain.states import JobStatus
from vidgate.service.lifecycle import JobLifecycle
from vidgate.store.changes import JobChanges

VIDEO = {"model": "sora-2", "prompt": "a lighthouse", "seconds": "4", "size": "1280x720"}


async def eventually(check: Callable[[], bool], *, timeout_s: float = 10.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


async def create(gateway: Gateway, key: str, **extra: Any) -> dict[str, Any]:
    answer = await gateway.client.post("/v1/videos", headers=auth(key), json={**VIDEO, **extra})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["wait=5"], 5),
        (["wait"], 60),  # Replicate: a bare wait is the longest, 60 s
        (["wait=600"], 60),
        (['respond-async, wait="7"'], 7),
        (["handling=lenient; x=1, WAIT=3"], 3),
        (["return=minimal", "wait=2"], 2),
        (["wait=0"], None),
        (["wait=soon"], None),
        (["wait=-3"], None),
        (["wait=1.5"], None),
        (["wait=١"], None),  # a non-ASCII digit
        (["wait=99999999999999999999"], None),
        ([], None),
        (["respond-async"], None),
    ],
)
def test_prefer_wait_is_read_as_replicate_and_rfc_7240_say(headers: list[str], expected: int | None) -> None:
    assert prefer_wait(headers) == expected


async def test_create_with_prefer_wait_answers_with_the_finished_video(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    answer = await gateway.client.post(
        "/v1/videos", headers={**auth(key), "Prefer": "wait=60"}, json=VIDEO, timeout=90
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["preference-applied"] == "wait=60"
    body = answer.json()
    assert body["status"] == "completed" and body["vidgate_status"] == "succeeded", body
    assert body["video_url"] and "openai-poll-after-ms" not in answer.headers
    assert gateway.services.lifecycle.changes.waiting == 0  # the waiter let go


async def test_retrieve_with_prefer_wait_answers_after_n_when_nothing_ends(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    created = await create(gateway, key, prompt="simulate:hang")
    answer = await gateway.client.get(
        f"/v1/videos/{created['id']}", headers={**auth(key), "Prefer": "wait=1"}, timeout=30
    )
    assert answer.status_code == 200 and answer.headers["preference-applied"] == "wait=1"
    assert answer.json()["status"] in ("queued", "in_progress")
    assert "openai-poll-after-ms" in answer.headers and answer.headers["etag"].startswith('W/"')
    malformed = await gateway.client.get(
        f"/v1/videos/{created['id']}", headers={**auth(key), "Prefer": "wait=later"}
    )
    assert malformed.status_code == 200 and "preference-applied" not in malformed.headers


async def test_retrieve_with_prefer_wait_wakes_when_the_job_ends(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    key, _ = await gateway.account(credit="10")
    created = await create(gateway, key)
    changes = gateway.services.lifecycle.changes
    waiting = asyncio.create_task(
        gateway.client.get(
            f"/v1/videos/{created['id']}", headers={**auth(key), "Prefer": "wait=60"}, timeout=90
        )
    )
    await eventually(lambda: changes.waiting == 1, what="the retrieve is waiting")
    await gateway.runtime.worker.drain(timeout_s=60)  # the in-process worker runs it to the end
    answer = await waiting
    assert answer.status_code == 200
    assert answer.json()["vidgate_status"] == "succeeded"


async def test_etag_and_if_none_match_answer_304_until_the_video_changes(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    key, _ = await gateway.account(credit="10")
    created = await create(gateway, key)
    path = f"/v1/videos/{created['id']}"
    first = await gateway.client.get(path, headers=auth(key))
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    again = await gateway.client.get(path, headers={**auth(key), "If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    strong = await gateway.client.get(path, headers={**auth(key), "If-None-Match": tag.removeprefix("W/")})
    assert strong.status_code == 304  # weak comparison
    listed = await gateway.client.get(path, headers={**auth(key), "If-None-Match": f'"nope", {tag}'})
    assert listed.status_code == 304
    other = await gateway.client.get(path, headers={**auth(key), "If-None-Match": '"nope"'})
    assert other.status_code == 200 and other.json()["id"] == created["id"]

    await gateway.runtime.worker.drain(timeout_s=60)
    changed = await gateway.client.get(path, headers={**auth(key), "If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["vidgate_status"] == "succeeded"
    final = await gateway.client.get(
        path, headers={**auth(key), "If-None-Match": changed.headers["etag"], "Prefer": "wait=60"}
    )
    assert final.status_code == 304  # an ended video that did not change: at once, not after 60 s

    intruder, _ = await gateway.account("intruder", credit="1")
    hidden = await gateway.client.get(path, headers={**auth(intruder), "If-None-Match": tag})
    assert hidden.status_code == 404 and "error" in hidden.json()


async def test_if_none_match_with_prefer_wait_is_a_long_poll_until_the_next_change(
    idle_gateway: Gateway,
) -> None:
    gateway = idle_gateway
    key, _ = await gateway.account(credit="10")
    created = await create(gateway, key)
    path = f"/v1/videos/{created['id']}"
    tag = (await gateway.client.get(path, headers=auth(key))).headers["etag"]
    changes = gateway.services.lifecycle.changes
    long_poll = asyncio.create_task(
        gateway.client.get(path, headers={**auth(key), "If-None-Match": tag, "Prefer": "wait=60"}, timeout=90)
    )
    await eventually(lambda: changes.waiting == 1, what="the long poll is waiting")
    worker = gateway.runtime.worker
    await worker.tick()  # lease the job and start its first step (queued -> submitting -> ...)
    answer = await long_poll
    await worker.drain(timeout_s=60)  # let the step finish before the app closes
    assert answer.status_code == 200, answer.status_code
    assert answer.headers["etag"] != tag and answer.headers["preference-applied"] == "wait=60"
    assert answer.json()["vidgate_status"] != "queued"


def test_the_fallback_spreads_re_reads_over_many_waiters() -> None:
    changes = JobChanges(sole_writer=False)  # e.g. serve --no-worker next to a worker on SQLite
    assert not changes.instant
    assert 0.75 <= changes.fallback_interval() <= 1.25
    with contextlib.ExitStack() as stack:
        for index in range(5000):
            stack.enter_context(changes.watch(f"video_{index}"))
        assert changes.waiting == 5000
        assert 7.5 <= changes.fallback_interval() <= 12.5  # 500 re-reads per second at most
    assert changes.waiting == 0


@pytest.mark.skipif(PG_URL is not None, reason="SQLite: another process cannot wake this one")
async def test_without_wake_ups_a_waiter_re_reads_and_still_sees_the_end(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    gateway.services.lifecycle.changes.sole_writer = False  # as `serve --no-worker` on SQLite
    key, _ = await gateway.account(credit="10")
    created = await create(gateway, key)
    changes = gateway.services.lifecycle.changes
    waiting = asyncio.create_task(
        gateway.client.get(
            f"/v1/videos/{created['id']}", headers={**auth(key), "Prefer": "wait=60"}, timeout=90
        )
    )
    await eventually(lambda: changes.waiting == 1, what="the retrieve is waiting")
    # "another process": its own lifecycle and its own (unconnected) changes
    other = JobLifecycle(gateway.services.db, gateway.services.catalog, changes=JobChanges())
    assert await other.finish(created["id"], JobStatus.CANCELED, error_code="x", error_message="elsewhere")
    answer = await waiting
    assert answer.json()["vidgate_status"] == "canceled"
