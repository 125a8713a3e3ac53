"""Scaffolding shared by the fake upstream servers in ``vidgate.testing.fakes``.

A fake is an ASGI app that speaks one provider's documented wire protocol, with
its auth check and its status progression, serving a real MP4. What it does is
scripted by a ``FakeScript`` (in-process: mutate ``fake.script``; out of process:
``POST /__fake__/script`` with the same fields as JSON), so tests can make it slow,
rate-limit, fail, answer 5xx, hang, send malformed JSON, expire outputs, or call back.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import io
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeScript:
    """What the fake does next. Every field has a harmless default."""

    latency_s: float = 0.3  # submit -> done
    fail_reason: str | None = None  # jobs end failed with this reason
    content_policy: bool = False  # jobs are refused on content grounds at submit
    submit_statuses: list[int] = field(default_factory=list)  # answer the next submits with these
    poll_statuses: list[int] = field(default_factory=list)  # answer the next polls with these
    malformed: bool = False  # 2xx answers carry a body that is not JSON
    unknown_shape: bool = False  # 2xx answers carry JSON of the wrong shape
    delay_s: float = 0.0  # sleep before answering any API call (timeouts)
    output_ttl_s: float | None = None  # output URLs stop working this long after completion
    send_callbacks: bool = True  # call the job's callback/webhook URL when it finishes
    video_seconds: int = 1  # length of the served MP4

    def update(self, data: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in data.items():
            if key in names:
                setattr(self, key, value)


@dataclass
class FakeJob:
    id: str
    created: float
    body: dict[str, Any]
    fail_reason: str | None
    callback_url: str | None = None
    completed: float | None = None
    canceled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def progress(self, latency_s: float) -> float:
        """0.0 .. 1.0 of the way to done."""
        if latency_s <= 0:
            return 1.0
        return min(1.0, (time.time() - self.created) / latency_s)


@functools.cache
def sample_mp4(seconds: int = 1, width: int = 320, height: int = 240) -> bytes:
    """A real, small H.264 MP4 (moving colour bars) made with PyAV; cached per size."""
    import av

    buffer = io.BytesIO()
    fps = 12
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast"}
        for i in range(seconds * fps):
            shade = (i * 16) % 256
            plane = bytes([shade]) * (width * height) + bytes([128]) * (width * height // 2)
            frame = av.VideoFrame(width, height, "yuv420p")
            for index, frame_plane in enumerate(frame.planes):
                size = frame_plane.buffer_size
                start = 0 if index == 0 else width * height + (index - 1) * (width * height // 4)
                frame_plane.update(plane[start : start + size])
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


class FakeUpstream(abc.ABC):
    """Base for one provider's fake: job table, scripted failures, MP4 serving.

    Subclasses add their provider's routes in ``routes()`` and use the helpers here.
    """

    name = "fake"

    def __init__(self, *, api_key: str = "test-key", script: FakeScript | None = None) -> None:
        self.api_key = api_key
        self.script = script or FakeScript()
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, json body)
        self.callbacks_sent: list[tuple[str, dict[str, Any]]] = []
        self.base_url = "http://fake"  # set by whoever serves it, used to build output URLs
        self._background: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- app

    @abc.abstractmethod
    def routes(self) -> list[Route]:
        """The provider's own wire routes (the base adds the ``/__fake__`` controls)."""

    def app(self) -> Starlette:
        control = [
            Route("/__fake__/script", self._set_script, methods=["POST"]),
            Route("/__fake__/jobs", self._list_jobs, methods=["GET"]),
            Route("/__fake__/media/{job_id}.mp4", self.serve_media, methods=["GET"]),
        ]
        return Starlette(routes=control + self.routes())

    async def _set_script(self, request: Request) -> Response:
        self.script.update(await request.json())
        return JSONResponse({"ok": True})

    async def _list_jobs(self, request: Request) -> Response:
        return JSONResponse({job_id: job.body for job_id, job in self.jobs.items()})

    # ------------------------------------------------------------- helpers

    async def preamble(self, request: Request, *, submit: bool) -> Response | None:
        """Record the call and play the script: delay, then a scripted HTTP error if any."""
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT") and (raw := await request.body()):
            try:
                parsed = json.loads(raw)
                body = parsed if isinstance(parsed, dict) else {"_": parsed}
            except ValueError:
                body = {}
        self.requests.append((request.method, request.url.path, body))
        if self.script.delay_s:
            await asyncio.sleep(self.script.delay_s)
        queue = self.script.submit_statuses if submit else self.script.poll_statuses
        if queue:
            status = queue.pop(0)
            headers = {"retry-after": "1"} if status == 429 else {}
            return JSONResponse({"error": f"scripted HTTP {status}"}, status, headers=headers)
        return None

    def reply(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON answer, unless the script asks for a malformed or wrongly shaped one."""
        if self.script.malformed:
            return Response(b"<html>upstream hiccup</html>", status, media_type="text/html")
        if self.script.unknown_shape:
            return JSONResponse({"unexpected": True}, status)
        return JSONResponse(body, status, headers=headers)

    def new_job(
        self, body: dict[str, Any], *, job_id: str | None = None, callback_url: str | None = None
    ) -> FakeJob:
        job = FakeJob(
            id=job_id or str(uuid.uuid4()),
            created=time.time(),
            body=body,
            fail_reason=self.script.fail_reason,
            callback_url=callback_url,
        )
        self.jobs[job.id] = job
        return job

    def state_of(self, job: FakeJob) -> str:
        """One of queued, running, succeeded, failed, canceled (the fake's own clock)."""
        if job.canceled:
            return "canceled"
        progress = job.progress(self.script.latency_s)
        if progress < 0.2:
            return "queued"
        if progress < 1.0:
            return "running"
        if job.completed is None:
            job.completed = time.time()
        return "failed" if job.fail_reason else "succeeded"

    def media_url(self, job: FakeJob) -> str:
        return f"{self.base_url}/__fake__/media/{job.id}.mp4"

    async def serve_media(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job.completed is None:
            return Response(b"not found", 404)
        ttl = self.script.output_ttl_s
        if ttl is not None and time.time() - job.completed > ttl:
            return Response(b"expired", 403)
        return Response(sample_mp4(self.script.video_seconds), media_type="video/mp4")

    def call_back(
        self,
        url: str,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        sign: Callable[[bytes], dict[str, str]] | None = None,
    ) -> None:
        """POST a callback in the background (never blocks the answer being sent)."""

        async def send() -> None:
            body = json.dumps(payload).encode()
            all_headers = {"content-type": "application/json", **(headers or {})}
            if sign:
                all_headers.update(sign(body))
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    await client.post(url, content=body, headers=all_headers)
                self.callbacks_sent.append((url, payload))
            except httpx.HTTPError:
                self.callbacks_sent.append((url, {"error": "delivery failed", **payload}))

        if self.script.send_callbacks:
            task = asyncio.get_running_loop().create_task(send())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def when_done(self, job: FakeJob, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` once the job reaches its end on the fake's clock."""

        async def waiter() -> None:
            await asyncio.sleep(max(0.0, self.script.latency_s - (time.time() - job.created)) + 0.05)
            self.state_of(job)
            await action()

        task = asyncio.get_running_loop().create_task(waiter())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def bearer_ok(request: Request, key: str) -> bool:
    return request.headers.get("authorization", "") == f"Bearer {key}"


def unauthorized(message: str = "unauthorized") -> Response:
    return JSONResponse({"error": message}, 401)
