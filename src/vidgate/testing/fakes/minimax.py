"""A fake MiniMax Hailuo v1 video API (specs/upstream-protocols.md §5).

- ``POST /v1/video_generation`` -> ``{"task_id", "base_resp"}``
- ``GET /v1/query/video_generation?task_id=`` -> ``Queueing`` -> ``Processing`` ->
  ``Success`` (with ``file_id``) or ``Fail``
- ``GET /v1/files/retrieve?file_id=`` -> ``file.download_url`` (unauthenticated, expires)

Like MiniMax, business errors come back as HTTP 200 with a non-zero
``base_resp.status_code``: 1004 for a missing key, 2049 for a wrong one, 2013 for bad
parameters, 1026 when ``script.content_policy`` is set, and 1002 for a scripted 429.
A failed task reports ``Fail`` with its reason in ``base_resp`` (UNCONFIRMED shape).

With a ``callback_url`` the fake first POSTs ``{"challenge": ...}`` and only goes on
if the same JSON comes back; it then pushes ``processing`` and, at the end,
``success``/``failed`` (lower-case, unsigned), as MiniMax does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, sample_mp4

RESOLUTIONS = ("512P", "720P", "768P", "1080P")
STATUS_WORDS = {
    "queued": "Queueing",
    "running": "Processing",
    "succeeded": "Success",
    "failed": "Fail",
}
OK = {"status_code": 0, "status_msg": "success"}


def base_resp(code: int, message: str, **extra: Any) -> Response:
    """MiniMax's business error: HTTP 200, the meaning in ``base_resp``."""
    return JSONResponse({**extra, "base_resp": {"status_code": code, "status_msg": message}})


def _problem(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "invalid params, model is required"
    # Model names drift, so any name is taken; the image-only families need their image.
    image_only = model.startswith("I2V-")
    if image_only and not body.get("first_frame_image"):
        return "invalid params, first_frame_image is required for this model"
    if model.startswith("S2V-") and not body.get("subject_reference"):
        return "invalid params, subject_reference is required for this model"
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str) or len(prompt) > 2000:
        return "invalid params, prompt must be a string of at most 2000 characters"
    if not prompt and not body.get("first_frame_image"):
        return "invalid params, prompt is required"
    if "duration" in body and body["duration"] not in (6, 10):
        return "invalid params, duration must be 6 or 10"
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        return f"invalid params, resolution must be one of {', '.join(RESOLUTIONS)}"
    if body.get("resolution") == "1080P" and body.get("duration") == 10:
        return "invalid params, 1080P supports 6 second videos only"
    for key in ("first_frame_image", "last_frame_image"):
        value = body.get(key)
        if value is not None and not str(value).startswith(("http://", "https://", "data:image/")):
            return f"invalid params, {key} must be a URL or a data:image URL"
    return None


class MinimaxFake(FakeUpstream):
    """MiniMax Hailuo v1 with base_resp errors, file lookup and the callback handshake."""

    name = "minimax"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []  # headers of each API call, for tests

    def routes(self) -> list[Route]:
        return [
            Route("/v1/video_generation", self.create, methods=["POST"]),
            Route("/v1/query/video_generation", self.query, methods=["GET"]),
            Route("/v1/files/retrieve", self.retrieve, methods=["GET"]),
        ]

    async def preamble(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        scripted = await super().preamble(request, submit=submit)
        if scripted is not None and scripted.status_code == 429:
            return base_resp(1002, "rate limit exceeded(RPM)")
        return scripted

    def _auth_error(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return base_resp(
                1004,
                "login fail: Please carry the API secret key in the 'Authorization' field "
                "of the request header",
            )
        if header[7:] != self.api_key:
            return base_resp(2049, "invalid api key")
        return None

    async def create(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=True) or self._auth_error(request):
            return failure
        try:
            body = await request.json()
        except ValueError:
            return base_resp(2013, "invalid params, body is not JSON")
        if not isinstance(body, dict):
            return base_resp(2013, "invalid params, body must be an object")
        if problem := _problem(body):
            return base_resp(2013, problem)
        if self.script.content_policy:
            return base_resp(1026, "input new_sensitive", task_id="")
        callback = body.get("callback_url")
        job = self.new_job(body, job_id=str(uuid.uuid4().int % 10**15), callback_url=callback)
        job.extra["file_id"] = str(uuid.uuid4().int % 10**15)
        if callback and self.script.send_callbacks:
            task = asyncio.get_running_loop().create_task(self._callbacks(job, str(callback)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return self.reply({"task_id": job.id, "base_resp": OK})

    async def query(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=False) or self._auth_error(request):
            return failure
        job = self.jobs.get(request.query_params.get("task_id", ""))
        if job is None:
            return base_resp(2013, "invalid params, task not found")
        state = self.state_of(job)
        answer: dict[str, Any] = {"task_id": job.id, "status": STATUS_WORDS[state], "file_id": ""}
        if state == "succeeded":
            answer.update(file_id=job.extra["file_id"], video_width=1366, video_height=768)
        if state == "failed":
            return self.reply({**answer, "base_resp": {"status_code": 1000, "status_msg": job.fail_reason}})
        return self.reply({**answer, "base_resp": OK})

    async def retrieve(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=False) or self._auth_error(request):
            return failure
        file_id = request.query_params.get("file_id", "")
        job = next((j for j in self.jobs.values() if j.extra.get("file_id") == file_id), None)
        if job is None or job.completed is None:
            return base_resp(2013, "invalid params, file not found")
        file = {
            "file_id": int(file_id),
            "bytes": len(sample_mp4(self.script.video_seconds)),
            "created_at": int(job.completed),
            "filename": "output_aigc.mp4",
            "purpose": "video_generation",
            "download_url": f"{self.media_url(job)}?Expires={int(time.time()) + 32400}",
        }
        return self.reply({"file": file, "base_resp": OK})

    # ----------------------------------------------------------- callbacks

    def _push(self, job: FakeJob, status: str) -> dict[str, Any]:
        push: dict[str, Any] = {"task_id": job.id, "status": status, "base_resp": OK}
        if status == "success":
            push["file_id"] = job.extra["file_id"]
        return push

    async def _callbacks(self, job: FakeJob, url: str) -> None:
        """Handshake first; status pushes only once our challenge comes back."""
        challenge = uuid.uuid4().hex
        try:
            async with httpx.AsyncClient(timeout=3) as client:
                answer = await client.post(url, json={"challenge": challenge})
            validated = answer.status_code == 200 and answer.json() == {"challenge": challenge}
        except (httpx.HTTPError, ValueError):
            validated = False
        job.extra["callback_validated"] = validated
        self.callbacks_sent.append((url, {"challenge": challenge, "validated": validated}))
        if not validated:
            return
        self.call_back(url, self._push(job, "processing"))

        async def final() -> None:
            done = "failed" if self.state_of(job) == "failed" else "success"
            self.call_back(url, self._push(job, done))

        self.when_done(job, final)
