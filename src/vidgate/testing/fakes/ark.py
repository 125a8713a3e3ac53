"""A fake BytePlus ModelArk / Volcengine Ark content-generation API (Seedance).

Speaks the wire format of specs/upstream-protocols.md §10 under ``/api/v3``: Bearer
auth, ``POST /contents/generations/tasks`` with a ``content`` array and the generation
settings as top-level fields (``resolution``, ``ratio``, ``duration`` or ``frames``,
``seed``, ``generate_audio``, ``watermark``, ``camera_fixed``, ``service_tier``,
``execution_expires_after``, ``draft``), checked against the documented values, as the
BytePlus SDK (``byteplussdkarkruntime``) sends them: that SDK sends every argument it
was not given as ``null``, which counts as absent. Old-style prompt flags
(``--resolution 720p`` in the text) are refused, so an adapter that still sends them
is caught. Tasks that go ``queued`` -> ``running`` ->
``succeeded`` (``content.video_url``) or ``failed`` (``error``), ``DELETE`` that cancels
a queued task and deletes a finished one (a running one is refused), error bodies
``{"error": {"code", "message", "param", "type"}}`` (``RateLimitExceeded`` on 429,
``InputTextSensitiveContentDetected`` for content), and unsigned callbacks carrying
the task body when it starts running and when it ends.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok

TASKS = "/api/v3/contents/generations/tasks"
ROLES = {"first_frame", "last_frame", "reference_image", "reference_video", "reference_audio"}
RATIOS = {"16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"}
RESOLUTIONS = {"480p", "720p", "1080p"}
FLAG_ALIASES: dict[str, str] = {
    "rs": "resolution",
    "rt": "ratio",
    "dur": "duration",
    "fps": "framepersecond",
    "wm": "watermark",
    "cf": "camerafixed",
}

_ERRORS = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccessDenied", "Forbidden"),
    404: ("ResourceNotFound", "NotFound"),
    429: ("RateLimitExceeded", "TooManyRequests"),
}


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} (Starlette caches the body the preamble read)."""
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def parse_flags(text: str) -> dict[str, str]:
    """``--name value`` flags in a prompt, long names only (aliases resolved)."""
    pairs: list[tuple[str, str]] = re.findall(r"--(\w+)\s+(\S+)", text)
    return {FLAG_ALIASES.get(name, name): value for name, value in pairs}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ArkFake(FakeUpstream):
    """Ark's content-generation tasks with a clock; see the module docstring."""

    name = "ark"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []
        self.force_status: str | None = None  # answer polls with this status word (tests)
        self.deleted: set[str] = set()
        self._timers: set[asyncio.Task[None]] = set()

    def routes(self) -> list[Route]:
        return [
            Route(TASKS, self._create, methods=["POST"]),
            Route(f"{TASKS}/{{task_id}}", self._task, methods=["GET", "DELETE"]),
        ]

    # ------------------------------------------------------------- plumbing

    def error(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        param: str = "",
    ) -> Response:
        default_code, kind = _ERRORS.get(status, ("InternalServiceError", "InternalServerError"))
        request_id = uuid.uuid4().hex
        body = {
            "error": {
                "code": code or default_code,
                "message": f"{message} Request id: {request_id}",
                "param": param,
                "type": kind,
            }
        }
        return JSONResponse(body, status, headers=headers)

    async def _gate(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        scripted = await self.preamble(request, submit=submit)
        if scripted is not None:
            retry = scripted.headers.get("retry-after")
            headers = {"retry-after": retry} if retry else None
            code = scripted.status_code
            return self.error(code, f"scripted HTTP {code}.", headers=headers)
        if not bearer_ok(request, self.api_key):
            return self.error(401, "The API key or AK/SK in the request is missing or invalid.")
        return None

    # ---------------------------------------------------------------- create

    async def _create(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=True)) is not None:
            return early
        # The official SDK sends every argument it was not given as JSON null; Ark reads
        # a null field as an absent one, so the fake does too (and keeps the rest).
        body = {name: value for name, value in (await json_body(request)).items() if value is not None}
        if problem := self._invalid(body):
            message, param = problem
            return self.error(400, message, param=param)
        if self.script.content_policy:
            return self.error(
                400,
                "The request failed because the input text may contain sensitive information.",
                "InputTextSensitiveContentDetected",
            )
        callback = body.get("callback_url")
        job = self.new_job(
            body,
            job_id=f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:5]}",
            callback_url=callback if isinstance(callback, str) else None,
        )
        if job.callback_url:
            self._schedule_callbacks(job, job.callback_url)
        return self.reply({"id": job.id})

    def _invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "The parameter `model` specified in the request is not valid.", "model"
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return "The parameter `content` specified in the request is not valid.", "content"
        for item in content:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text":
                if flags := parse_flags(str(item.get("text", ""))):
                    name = next(iter(flags))
                    return (
                        f"The parameter --{name} in the text prompt is not supported; "
                        f"pass `{name}` as a request field.",
                        "content.text",
                    )
            elif kind == "draft_task":
                if not isinstance(item.get(kind), dict) or not item[kind].get("id"):
                    return "The parameter `content.draft_task.id` is missing.", "content.draft_task"
            elif kind in ("image_url", "video_url", "audio_url"):
                if not isinstance(item.get(kind), dict) or not item[kind].get("url"):
                    return f"The parameter `content.{kind}.url` is missing.", f"content.{kind}"
                if item.get("role") is not None and item["role"] not in ROLES:
                    return f"The role {item['role']!r} is not valid.", "content.role"
            else:
                return f"The content type {kind!r} is not valid.", "content.type"
        return self._invalid_fields(body)

    def _invalid_fields(self, body: dict[str, Any]) -> tuple[str, str] | None:
        if body.get("resolution", "720p") not in RESOLUTIONS:
            return f"The parameter `resolution` {body['resolution']!r} is not valid.", "resolution"
        if body.get("ratio", "16:9") not in RATIOS:
            return f"The parameter `ratio` {body['ratio']!r} is not valid.", "ratio"
        if "duration" in body and "frames" in body:
            return "The parameters `duration` and `frames` cannot be used together.", "frames"
        duration = body.get("duration", 5)
        if not _whole(duration) or not (duration == -1 or 2 <= duration <= 15):
            return f"The parameter `duration` {duration!r} is not valid.", "duration"
        frames = body.get("frames", 121)  # 25 + 4n, from 29 to 289
        if not _whole(frames) or not (29 <= frames <= 289 and (frames - 25) % 4 == 0):
            return f"The parameter `frames` {frames!r} is not valid.", "frames"
        seed = body.get("seed", 0)
        if not _whole(seed) or not -1 <= seed <= 2**32 - 1:
            return "The parameter `seed` is not valid.", "seed"
        for name in ("generate_audio", "watermark", "camera_fixed", "return_last_frame", "draft"):
            if name in body and not isinstance(body[name], bool):
                return f"The parameter `{name}` must be a boolean.", name
        if body.get("service_tier", "default") not in ("default", "flex"):
            return f"The parameter `service_tier` {body['service_tier']!r} is not valid.", "service_tier"
        expires = body.get("execution_expires_after", 172800)
        if not _whole(expires) or not 3600 <= expires <= 259200:
            return "The parameter `execution_expires_after` is not valid.", "execution_expires_after"
        for name in ("callback_url", "safety_identifier"):
            if name in body and not isinstance(body[name], str):
                return f"The parameter `{name}` must be a string.", name
        return None

    def _schedule_callbacks(self, job: FakeJob, url: str) -> None:
        async def started() -> None:
            await asyncio.sleep(self.script.latency_s * 0.2 + 0.01)
            if self.state_of(job) == "running":
                self.call_back(url, self.task_body(job))

        async def finished() -> None:
            if job.id not in self.deleted:
                self.call_back(url, self.task_body(job))

        task = asyncio.get_running_loop().create_task(started())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        self.when_done(job, finished)

    # ------------------------------------------------------------------ task

    async def _task(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        task_id = request.path_params["task_id"]
        job = self.jobs.get(task_id)
        if job is None or task_id in self.deleted:
            return self.error(404, f"The specified task {task_id} is not found.")
        if request.method == "GET":
            return self.reply(self.task_body(job))
        state = self.state_of(job)
        if state == "running":
            return self.error(400, "A running task cannot be cancelled.", "InvalidParameter")
        if state == "queued":
            job.canceled = True
        else:
            self.deleted.add(task_id)
        return self.reply({})

    def task_body(self, job: FakeJob) -> dict[str, Any]:
        state = self.state_of(job)
        words = {"canceled": "cancelled"}
        fields = job.body
        done = job.completed if job.completed is not None else time.time()
        body: dict[str, Any] = {
            "id": job.id,
            "model": job.body.get("model"),
            "status": self.force_status or words.get(state, state),
            "error": None,
            "created_at": int(job.created),
            "updated_at": int(done),
            "seed": fields.get("seed", 11),
            "resolution": fields.get("resolution", "720p"),
            "ratio": fields.get("ratio", "16:9"),
            "duration": fields.get("duration", 5),
            "framespersecond": 24,
        }
        if state == "succeeded":
            expires = int(done) + 86400
            url = f"{self.media_url(job)}?X-Tos-Expires=86400&X-Tos-Date={expires}"
            body["content"] = {"video_url": url, "last_frame_url": None}
            body["usage"] = {"completion_tokens": 246840, "total_tokens": 246840}
        elif state == "failed":
            body["error"] = {"code": "InternalServiceError", "message": job.fail_reason}
        return body
