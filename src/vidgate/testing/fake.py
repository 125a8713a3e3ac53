"""Scaffolding shared by the fake upstream servers in ``vidgate.testing.fakes``.

A fake is an ASGI app that speaks one provider's documented wire protocol, with
its auth check and its status progression, serving a real MP4. What it does is
scripted by a ``FakeScript`` (in-process: mutate ``fake.script``; out of process:
``POST /__fake__/script`` with the same fields as JSON), so tests can make it slow,
rate-limit, fail, answer 5xx, hang, send malformed JSON, expire outputs, or call back.

Generic to every fake:

- chaos (``vidgate.testing.chaos``): random 5xx / 429 / slow / malformed answers per
  API call, seedable; set at construction or with ``POST /__fake__/chaos``;
- ``GET /__fake/submissions``: every accepted submission, with the gateway job id it
  carried (``reference``: from a ``job=`` query on its callback URL or the provider's
  reference field), its idempotency key, status and whether it was cancelled, so a
  test can count upstream jobs per gateway job;
- callback modes (``script.callback_modes``): ``twice`` (each callback sent two
  times), ``out_of_order`` (after each later callback, the first one sent for that URL
  again: a stale "running" after "succeeded"), ``late`` (each callback held back
  ``script.callback_delay_s``), ``unknown_id`` (the upstream id in the payload replaced
  by one nobody knows).
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
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.chaos import Chaos, ChaosMiddleware, ChaosState

CALLBACK_MODES = frozenset({"twice", "out_of_order", "late", "unknown_id"})


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
    callback_modes: list[str] = field(default_factory=list)  # see CALLBACK_MODES
    callback_delay_s: float = 2.0  # how late a "late" callback comes

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
    reference: str | None = None  # the gateway job id the submission carried
    idempotency_key: str | None = None

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
    # Path patterns chaos leaves alone (media downloads), besides the /__fake controls.
    chaos_exempt: tuple[str, ...] = (r"\.mp4$",)

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        script: FakeScript | None = None,
        chaos: Chaos | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.script = script or FakeScript()
        self.chaos = ChaosState(chaos, seed, self.chaos_exempt)
        self._first_callback: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, json body)
        self.callbacks_sent: list[tuple[str, dict[str, Any]]] = []
        self.base_url = "http://fake"  # set by whoever serves it, used to build output URLs
        self._background: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- app

    @abc.abstractmethod
    def routes(self) -> list[Route]:
        """The provider's own wire routes (the base adds the ``/__fake__`` controls)."""

    def app(self) -> Any:
        """The ASGI app: the provider's routes and the controls, with chaos in front."""
        control = [
            Route("/__fake__/script", self._set_script, methods=["POST"]),
            Route("/__fake__/chaos", self._set_chaos, methods=["POST"]),
            Route("/__fake__/jobs", self._list_jobs, methods=["GET"]),
            Route("/__fake/submissions", self._submissions, methods=["GET"]),
            Route("/__fake__/submissions", self._submissions, methods=["GET"]),
            Route("/__fake__/media/{job_id}.mp4", self.serve_media, methods=["GET"]),
        ]
        return ChaosMiddleware(Starlette(routes=control + self.routes()), self.chaos)

    async def _set_script(self, request: Request) -> Response:
        self.script.update(await request.json())
        return JSONResponse({"ok": True})

    async def _set_chaos(self, request: Request) -> Response:
        """``{"spec": "5xx=0.2,...", "slow_s": 40, "seed": 7}``; an empty spec turns chaos off."""
        data = await request.json()
        try:
            chaos = Chaos.parse(str(data.get("spec", "")), slow_s=float(data.get("slow_s", 40.0)))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        self.chaos.chaos = chaos
        if "seed" in data:
            self.chaos.reseed(data["seed"])
        return JSONResponse({"ok": True})

    def submissions(self) -> list[dict[str, Any]]:
        """Every accepted submission, oldest first (what ``GET /__fake/submissions`` answers)."""
        return [
            {
                "upstream_id": job.id,
                "prompt": prompt_of(job.body),
                "reference": job.reference,
                "idempotency_key": job.idempotency_key,
                "status": self.state_of(job),
                "canceled": job.canceled,
            }
            for job in sorted(self.jobs.values(), key=lambda j: j.created)
        ]

    async def _submissions(self, request: Request) -> Response:
        return JSONResponse(self.submissions())

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
        self,
        body: dict[str, Any],
        *,
        job_id: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> FakeJob:
        job = FakeJob(
            id=job_id or str(uuid.uuid4()),
            created=time.time(),
            body=body,
            fail_reason=self.script.fail_reason,
            callback_url=callback_url,
            reference=reference_of(body, callback_url),
            idempotency_key=idempotency_key,
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
        """POST a callback in the background (never blocks the answer being sent), shaped
        by ``script.callback_modes``."""
        modes = set(self.script.callback_modes) & CALLBACK_MODES
        if "unknown_id" in modes:
            payload = self._with_unknown_ids(payload)
        stale = self._first_callback.setdefault(url, payload)
        sends = [payload, payload] if "twice" in modes else [payload]
        if "out_of_order" in modes and stale is not payload:
            sends.append(stale)  # an older state, after the newer one
        delay = self.script.callback_delay_s if "late" in modes else 0.0

        async def post(item: dict[str, Any]) -> None:
            body = json.dumps(item).encode()
            all_headers = {"content-type": "application/json", **(headers or {})}
            if sign:
                all_headers.update(sign(body))
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    await client.post(url, content=body, headers=all_headers)
                self.callbacks_sent.append((url, item))
            except httpx.HTTPError:
                self.callbacks_sent.append((url, {"error": "delivery failed", **item}))

        async def send() -> None:
            if delay:
                await asyncio.sleep(delay)
            for item in sends:
                await post(item)

        if self.script.send_callbacks:
            task = asyncio.get_running_loop().create_task(send())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _with_unknown_ids(self, payload: Any) -> Any:
        """``payload`` with every string that is one of our job ids replaced by a stranger."""
        if isinstance(payload, dict):
            return {k: self._with_unknown_ids(v) for k, v in payload.items()}
        if isinstance(payload, list):
            return [self._with_unknown_ids(v) for v in payload]
        if isinstance(payload, str) and payload in self.jobs:
            return f"unknown-{uuid.uuid5(uuid.NAMESPACE_URL, payload).hex[:12]}"
        return payload

    def when_done(self, job: FakeJob, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` once the job reaches its end on the fake's clock."""

        async def waiter() -> None:
            await asyncio.sleep(max(0.0, self.script.latency_s - (time.time() - job.created)) + 0.05)
            self.state_of(job)
            await action()

        task = asyncio.get_running_loop().create_task(waiter())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def prompt_of(body: dict[str, Any]) -> str | None:
    """The prompt of a create body, in the places providers put it."""
    candidates = [
        body.get("prompt"),
        body.get("promptText"),
        dig_any(body, "input", "prompt"),
        dig_any(body, "instances", 0, "prompt"),
    ]
    content = body.get("content")
    if isinstance(content, list):
        candidates += [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
    return next((c for c in candidates if isinstance(c, str) and c), None)


def reference_of(body: dict[str, Any], callback_url: str | None) -> str | None:
    """The gateway job id a submission carried: a ``job=`` query on its callback URL, or
    the provider's own reference field (Kling ``external_task_id``, xAI ``user``,
    ComfyUI ``extra_data.vidgate_job``)."""
    if callback_url and (job := parse_qs(urlsplit(callback_url).query).get("job")):
        return job[0]
    for path in (("external_task_id",), ("user",), ("extra_data", "vidgate_job")):
        value = dig_any(body, *path)
        if isinstance(value, str) and value:
            return value
    return None


def dig_any(body: Any, *path: str | int) -> Any:
    node = body
    for step in path:
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict):
            node = node.get(step)
        else:
            return None
    return node


def bearer_ok(request: Request, key: str) -> bool:
    return request.headers.get("authorization", "") == f"Bearer {key}"


def unauthorized(message: str = "unauthorized") -> Response:
    return JSONResponse({"error": message}, 401)
