"""A fake Runway API: ``/v1/image_to_video``, ``/v1/text_to_video``, ``/v1/tasks/{id}``.

Speaks the wire format of specs/upstream-protocols.md §7: Bearer auth plus the
required ``X-Runway-Version`` header, camelCase bodies validated against the
documented ratios, tasks that go ``THROTTLED`` -> ``PENDING`` -> ``RUNNING``
(``progress`` 0..1) -> ``SUCCEEDED`` (``output`` URLs) or ``FAILED`` (``failure``,
``failureCode``), ``DELETE`` -> 204 -> ``CANCELLED``, and ``{"error": "..."}``
bodies for HTTP errors. Content moderation fails the task with ``SAFETY.INPUT.TEXT``,
as Runway does. Runway has no callbacks, so ``script.send_callbacks`` has no effect.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok

VERSION = "2024-11-06"
I2V_RATIOS = {"1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"}
VEO_RATIOS = {"1280:720", "720:1280", "1080:1920", "1920:1080"}
T2V_RATIOS = I2V_RATIOS | VEO_RATIOS


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} (Starlette caches the body the preamble read)."""
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RunwayFake(FakeUpstream):
    """Runway's task API with a clock; see the module docstring."""

    name = "runway"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []
        self.force_status: str | None = None  # answer polls with this status word (tests)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/image_to_video", self._image_to_video, methods=["POST"]),
            Route("/v1/text_to_video", self._text_to_video, methods=["POST"]),
            Route("/v1/tasks/{task_id}", self._task, methods=["GET", "DELETE"]),
        ]

    # ------------------------------------------------------------- plumbing

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"error": message}, status, headers=headers)

    async def _gate(self, request: Request, *, submit: bool) -> Response | None:
        """Script first (delay, scripted status), then auth, then the version header."""
        self.seen_headers.append(dict(request.headers))
        scripted = await self.preamble(request, submit=submit)
        if scripted is not None:
            retry = scripted.headers.get("retry-after")
            headers = {"retry-after": retry} if retry else None
            code = scripted.status_code
            return self.error(code, f"scripted HTTP {code}", headers)
        if not bearer_ok(request, self.api_key):
            return self.error(401, "Invalid API key.")
        if request.headers.get("x-runway-version") != VERSION:
            return self.error(400, f"You must provide a valid X-Runway-Version header ({VERSION}).")
        return None

    # ---------------------------------------------------------------- create

    async def _image_to_video(self, request: Request) -> Response:
        return await self._create(request, image=True)

    async def _text_to_video(self, request: Request) -> Response:
        return await self._create(request, image=False)

    async def _create(self, request: Request, *, image: bool) -> Response:
        if (early := await self._gate(request, submit=True)) is not None:
            return early
        body = await json_body(request)
        if problem := self._invalid(body, image=image):
            return self.error(400, problem)
        job = self.new_job(body)
        if self.script.content_policy:
            job.fail_reason = "The prompt text did not pass content moderation."
            job.extra["failureCode"] = "SAFETY.INPUT.TEXT"
        return self.reply({"id": job.id})

    def _invalid(self, body: dict[str, Any], *, image: bool) -> str | None:
        if not isinstance(body.get("model"), str):
            return "Validation of body failed: model is required"
        if image and not body.get("promptImage"):
            return "Validation of body failed: promptImage is required"
        if not image and not isinstance(body.get("promptText"), str):
            return "Validation of body failed: promptText is required"
        ratio = body.get("ratio")
        if ratio is not None and ratio not in (I2V_RATIOS | VEO_RATIOS if image else T2V_RATIOS):
            return f"Validation of body failed: ratio {ratio!r} is not supported"
        duration = body.get("duration")
        if duration is not None and (not isinstance(duration, int) or not 2 <= duration <= 10):
            return "Validation of body failed: duration must be an integer from 2 to 10"
        return None

    # ------------------------------------------------------------------ task

    async def _task(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        job = self.jobs.get(request.path_params["task_id"])
        if job is None:
            return self.error(404, "Task not found.")
        if request.method == "DELETE":
            job.canceled = True
            return Response(status_code=204)
        return self.reply(self.task_body(job))

    def task_body(self, job: FakeJob) -> dict[str, Any]:
        body: dict[str, Any] = {"id": job.id, "createdAt": _iso(job.created)}
        state = self.state_of(job)
        if self.force_status:
            body["status"] = self.force_status
        elif state == "queued":
            early = job.progress(self.script.latency_s) < 0.1
            body["status"] = "THROTTLED" if early else "PENDING"
        elif state == "running":
            body["status"] = "RUNNING"
            body["progress"] = round(job.progress(self.script.latency_s), 2)
        elif state == "succeeded":
            body["status"] = "SUCCEEDED"
            body["output"] = [f"{self.media_url(job)}?_jwt=fake.{int(time.time())}"]
        elif state == "failed":
            body["status"] = "FAILED"
            body["failure"] = job.fail_reason
            body["failureCode"] = job.extra.get("failureCode", "INTERNAL.BAD_OUTPUT.CODE01")
        else:
            body["status"] = "CANCELLED"
        return body
