"""``GET /v1/videos/{id}/events``: a video's status and progress as Server-Sent Events.

The stream (``text/event-stream``) sends one event per visible change::

    id: <the video's ETag token>
    event: video.status
    data: <the same JSON object as GET /v1/videos/{id}>

first the video as it is now, then each change (state, progress, its end), and it
ends after the event of a terminal state. A comment line (``: keepalive``) goes out
every ``KEEPALIVE_S`` while nothing changes, so proxies keep the connection open.
``retry: 2000`` asks a reconnecting client to wait 2 s.

``Last-Event-ID`` (sent by a reconnecting ``EventSource``): when it names the video's
current state, that state is not sent again and the stream starts with the next
change; for an ended video whose end the client has already seen, the answer is 204,
which tells ``EventSource`` to stop reconnecting. An unknown id is ignored (everything
is sent from the current state). Another account's or an unknown video is 404 in the
OpenAI error envelope, before any stream starts.

Between changes the stream sleeps on the video's wake-up (``store.changes``): no CPU,
no database connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse

from vidgate.api.context import Svc
from vidgate.api.media import media_links
from vidgate.api.native import Caller
from vidgate.api.openapi import error_responses
from vidgate.domain.job import Job, Principal
from vidgate.errors import NotFound, ServiceUnavailable
from vidgate.media.links import MediaLinks
from vidgate.service.video_object import video_object
from vidgate.service.waiting import job_version

router = APIRouter(prefix="/v1", tags=["videos"])

KEEPALIVE_S = 15.0
EVENT = "video.status"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _responses() -> dict[int | str, dict[str, Any]]:
    stream: dict[str, Any] = {
        "description": "Server-Sent Events: `event: video.status`, `id: <ETag token>`,"
        " `data: <the video object>`; ends after the terminal state",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    found = error_responses({503: "The database is unavailable; retry"})
    found[200] = stream
    found[204] = {"description": "Last-Event-ID names the end already seen"}
    return found


@router.get(
    "/videos/{video_id}/events",
    summary="Follow a video's status and progress (Server-Sent Events)",
    response_model=None,
    responses=_responses(),
)
async def video_events(
    video_id: str,
    request: Request,
    caller: Caller,
    svc: Svc,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received (reconnecting)")
    ] = None,
) -> Response:
    job = await svc.jobs.get(caller, video_id)
    seen = (last_event_id or "").strip() or None
    if seen is not None and job.terminal and job_version(job) == seen:
        return Response(status_code=204)
    stream = _stream(svc, caller, job.id, seen, media_links(request))
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


def event_frame(job: Job, links: MediaLinks) -> str:
    data = json.dumps(video_object(job, links), separators=(",", ":"))
    return f"id: {job_version(job)}\nevent: {EVENT}\ndata: {data}\n\n"


async def _stream(
    svc: Svc, caller: Principal, job_id: str, seen: str | None, links: MediaLinks
) -> AsyncIterator[str]:
    changes = svc.lifecycle.changes
    loop = asyncio.get_running_loop()
    yield "retry: 2000\n\n"
    with changes.watch(job_id) as watch:
        try:
            job = await svc.jobs.get(caller, job_id)  # read after registering: no change is missed
        except NotFound:
            return
        quiet_since = loop.time()
        while True:
            if job_version(job) != seen:
                seen = job_version(job)
                yield event_frame(job, links)
                quiet_since = loop.time()
            if job.terminal or changes.closed:
                return
            woken = await watch.changed(max(0.0, quiet_since + KEEPALIVE_S - loop.time()))
            if loop.time() - quiet_since >= KEEPALIVE_S:
                yield ": keepalive\n\n"
                quiet_since = loop.time()
            if woken or not changes.instant:
                try:
                    job = await svc.jobs.get(caller, job_id)
                except NotFound:  # deleted meanwhile
                    return
                except ServiceUnavailable:
                    continue  # the database is restarting: the fallback re-reads again
