"""``GET /v1/videos/{id}/events`` read by a real streaming client (httpx) from a real
uvicorn server on a loopback port: the events parse as Server-Sent Events, follow the
video to its end and stop; ``Last-Event-ID`` resumes; other accounts get 404."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import auth
from vidgate.api import video_events
from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.config import Settings
from vidgate.money import micros_from_usd
from vidgate.runtime.app import create_app
from vidgate.store.engine import open_database
from vidgate.testing.server import serve_in_thread

VIDEO = {"model": "sora-2", "prompt": "a lighthouse", "seconds": "4", "size": "1280x720"}


@dataclass
class Event:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads("\n".join(self.data))
        return found


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[Event]
    comments: list[str]
    retry: int | None


async def read_stream(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Stream:
    """Read an SSE response to its end, parsed as the HTML standard says (lines, fields)."""
    events: list[Event] = []
    comments: list[str] = []
    retry: int | None = None
    async with client.stream("GET", url, headers=headers, timeout=60) as answer:
        if answer.status_code != 200:
            await answer.aread()
            return Stream(answer.status_code, answer.headers, [], [], None)
        current = Event()
        async for line in answer.aiter_lines():
            if line == "":
                if current.data:
                    events.append(current)
                current = Event(id=current.id)
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                comments.append(value)
            elif name == "data":
                current.data.append(value)
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "retry":
                retry = int(value)
        return Stream(answer.status_code, answer.headers, events, comments, retry)


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Settings, str]]:
    configured = settings.model_copy(update={"simulator_latency_s": 1.0})
    with serve_in_thread(create_app(configured, env={})) as base:
        yield configured, base


@pytest.fixture
async def keys(served: tuple[Settings, str]) -> AsyncIterator[tuple[str, str]]:
    settings, _ = served
    db = open_database(settings)
    made = []
    try:
        for name in ("owner", "intruder"):
            async with db.transaction() as conn:
                account = await ensure_account(conn, name)
                issued = await issue_key(conn, account, mode="test")
                await top_up(conn, account, micros=micros_from_usd(Decimal("10")), mode=issued.mode)
            made.append(issued.secret)
        yield made[0], made[1]
    finally:
        await db.dispose()


async def test_the_events_follow_a_video_to_its_end(
    served: tuple[Settings, str], keys: tuple[str, str]
) -> None:
    _, base = served
    key, intruder = keys
    async with httpx.AsyncClient(base_url=base) as client:
        created = (await client.post("/v1/videos", headers=auth(key), json=VIDEO)).json()
        url = f"/v1/videos/{created['id']}/events"
        stream = await read_stream(client, url, auth(key))

        assert stream.status == 200, stream
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.retry == 2000
        assert stream.events and all(e.event == "video.status" for e in stream.events)
        bodies = [e.json() for e in stream.events]
        assert all(b["id"] == created["id"] and b["object"] == "video" for b in bodies)
        assert bodies[-1]["vidgate_status"] == "succeeded" and bodies[-1]["video_url"]
        assert all(b["vidgate_status"] not in ("succeeded", "failed") for b in bodies[:-1])
        progress = [b["progress"] for b in bodies]
        assert progress == sorted(progress) and progress[-1] == 100
        ids = [e.id for e in stream.events]
        assert len(set(ids)) == len(ids), "each event is a new state"

        # the same as a retrieve says, ETag included
        retrieved = await client.get(f"/v1/videos/{created['id']}", headers=auth(key))
        assert retrieved.headers["etag"] == f'W/"{ids[-1]}"'
        assert {k: v for k, v in retrieved.json().items() if not k.endswith("_url")} == {
            k: v for k, v in bodies[-1].items() if not k.endswith("_url")
        }

        # An EventSource reconnecting after the end it saw is told to stop (204) ...
        again = await read_stream(client, url, {**auth(key), "Last-Event-ID": ids[-1]})
        assert again.status == 204
        # ... and one that saw an earlier state gets the end at once.
        resumed = await read_stream(client, url, {**auth(key), "Last-Event-ID": ids[0]})
        assert [e.id for e in resumed.events] == [ids[-1]]
        unknown = await read_stream(client, url, {**auth(key), "Last-Event-ID": "whatever"})
        assert [e.id for e in unknown.events] == [ids[-1]]

        hidden = await read_stream(client, url, auth(intruder))
        assert hidden.status == 404
        missing = await client.get("/v1/videos/video_nope/events", headers=auth(key))
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "id"
        anonymous = await client.get(url)
        assert anonymous.status_code == 401 and "error" in anonymous.json()


async def test_a_stream_from_a_resumed_id_waits_for_the_next_change(
    served: tuple[Settings, str], keys: tuple[str, str]
) -> None:
    """Last-Event-ID naming the current state: nothing is repeated; the next change comes."""
    _, base = served
    key, _ = keys
    async with httpx.AsyncClient(base_url=base) as client:
        created = await client.post(
            "/v1/videos", headers=auth(key), json={**VIDEO, "prompt": "simulate:fail"}
        )
        video = created.json()
        first = created.headers["etag"].removeprefix("W/").strip('"')
        stream = await read_stream(
            client, f"/v1/videos/{video['id']}/events", {**auth(key), "Last-Event-ID": first}
        )
        assert stream.status == 200 and stream.events
        assert first not in [e.id for e in stream.events]
        assert stream.events[-1].json()["vidgate_status"] == "failed"


async def test_a_quiet_stream_sends_keepalive_comments(
    served: tuple[Settings, str], keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video_events, "KEEPALIVE_S", 0.2)
    _, base = served
    key, _ = keys
    async with httpx.AsyncClient(base_url=base) as client:
        video = (
            await client.post("/v1/videos", headers=auth(key), json={**VIDEO, "prompt": "simulate:hang"})
        ).json()
        seen: list[str] = []
        async with client.stream(
            "GET", f"/v1/videos/{video['id']}/events", headers=auth(key), timeout=30
        ) as answer:
            async for line in answer.aiter_lines():
                seen.append(line)
                if line == ": keepalive":
                    break
        assert seen[0] == "retry: 2000" and any(line.startswith("data: ") for line in seen)
        assert seen[-1] == ": keepalive"
