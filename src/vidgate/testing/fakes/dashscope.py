"""A fake DashScope (Alibaba Model Studio) async video API for the Wan models.

Speaks the wire format of specs/upstream-protocols.md §9: Bearer auth, the required
``X-DashScope-Async: enable`` header on submit (refused with ``AccessDenied`` as the
real service does), ``{"model", "input", "parameters"}`` bodies checked per model family
(t2v ``size`` as ``W*H``, i2v ``img_url`` + ``resolution`` ``480P|720P|1080P``, kf2v
``first_frame_url``; ``shot_type`` ``single|multi`` on wan2.6 models only, ``multi`` with
``prompt_extend``; top-level keys other than ``model``, ``input`` and ``parameters``
refused), tasks at ``/api/v1/tasks/{id}`` that go ``PENDING`` -> ``RUNNING`` ->
``SUCCEEDED`` (``video_url``) or ``FAILED`` (``code`` / ``message``), ``UNKNOWN`` for a
task it does not know, cancel on PENDING only, and ``{"request_id", "code", "message"}``
error bodies (``Throttling.RateQuota`` on 429, ``DataInspectionFailed`` for content).
DashScope has no callbacks, so ``script.send_callbacks`` has no effect.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok

VIDEO_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
KF2V_PATH = "/api/v1/services/aigc/image2video/video-synthesis"
RESOLUTIONS = {"480P", "720P", "1080P"}

_CODES = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "ModelNotFound",
    429: "Throttling.RateQuota",
}


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} (Starlette caches the body the preamble read)."""
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class DashscopeFake(FakeUpstream):
    """DashScope's async task API with a clock; see the module docstring."""

    name = "dashscope"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []
        self.force_status: str | None = None  # answer polls with this task_status (tests)

    def routes(self) -> list[Route]:
        return [
            Route(VIDEO_PATH, self._create, methods=["POST"]),
            Route(KF2V_PATH, self._create, methods=["POST"]),
            Route("/api/v1/tasks/{task_id}", self._task, methods=["GET"]),
            Route("/api/v1/tasks/{task_id}/cancel", self._cancel, methods=["POST"]),
        ]

    # ------------------------------------------------------------- plumbing

    def error(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = {
            "request_id": str(uuid.uuid4()),
            "code": code or _CODES.get(status, "InternalError"),
            "message": message,
        }
        return JSONResponse(body, status, headers=headers)

    async def _gate(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        scripted = await self.preamble(request, submit=submit)
        if scripted is not None:
            retry = scripted.headers.get("retry-after")
            headers = {"retry-after": retry} if retry else None
            code = scripted.status_code
            return self.error(code, f"scripted HTTP {code}", headers=headers)
        if not bearer_ok(request, self.api_key):
            return self.error(401, "Invalid API-key provided.")
        if submit and request.headers.get("x-dashscope-async") != "enable":
            return self.error(403, "current user api does not support synchronous calls")
        return None

    # ---------------------------------------------------------------- create

    async def _create(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=True)) is not None:
            return early
        body = await json_body(request)
        if problem := self._invalid(body, kf2v_path=request.url.path == KF2V_PATH):
            return self.error(400, problem)
        if self.script.content_policy:
            return self.error(400, "Input data may contain inappropriate content.", "DataInspectionFailed")
        job = self.new_job(body)
        answer = {
            "output": {"task_status": "PENDING", "task_id": job.id},
            "request_id": str(uuid.uuid4()),
        }
        return self.reply(answer)

    def _invalid(self, body: dict[str, Any], *, kf2v_path: bool) -> str | None:
        model = body.get("model")
        inputs, params = body.get("input"), body.get("parameters", {})
        if not isinstance(model, str) or not model:
            return "Model not specified."
        if not isinstance(inputs, dict) or not isinstance(params, dict):
            return "input must be an object; parameters must be an object"
        if extra := sorted(set(body) - {"model", "input", "parameters"}):
            # DashScope reads only these three; the fake refuses the rest rather than
            # ignoring it, so that a control sent in the wrong place cannot pass unnoticed.
            return f"Unrecognized field {extra[0]!r}; the body has model, input and parameters."
        if ("kf2v" in model) != kf2v_path:
            return f"Model {model} is not supported on this endpoint."
        if "kf2v" in model and not isinstance(inputs.get("first_frame_url"), str):
            return "Field required: input.first_frame_url"
        if "i2v" in model and not isinstance(inputs.get("img_url"), str):
            return "Field required: input.img_url"
        if "t2v" in model and not isinstance(inputs.get("prompt"), str):
            return "Field required: input.prompt"
        size = params.get("size")
        if size is not None and not (isinstance(size, str) and re.fullmatch(r"\d+\*\d+", size)):
            return f"The size {size!r} is invalid; use W*H such as 1280*720."
        resolution = params.get("resolution")
        if resolution is not None and resolution not in RESOLUTIONS:
            return f"The resolution {resolution!r} is invalid; use 480P, 720P or 1080P."
        if "prompt_extend" in params and not isinstance(params["prompt_extend"], bool):
            return "parameters.prompt_extend must be a boolean."
        if "audio_url" in inputs and not isinstance(inputs["audio_url"], str):
            return "input.audio_url must be a URL."
        if problem := self._invalid_shots(model, params):
            return problem
        duration = params.get("duration")
        if duration is not None and (not isinstance(duration, int) or not 1 <= duration <= 15):
            return "parameters.duration must be an integer."
        return None

    @staticmethod
    def _invalid_shots(model: str, params: dict[str, Any]) -> str | None:
        """``shot_type`` is a wan2.6 parameter, ``single`` or ``multi``; ``multi`` takes
        effect only with ``prompt_extend`` (default true), which the fake insists on."""
        if "shot_type" not in params:
            return None
        shot = params["shot_type"]
        if not model.startswith("wan2.6-"):
            return f"Model {model} does not support parameters.shot_type."
        if shot not in ("single", "multi"):
            return f"The shot_type {shot!r} is invalid; use single or multi."
        if shot == "multi" and params.get("prompt_extend", True) is not True:
            return "parameters.shot_type multi takes effect only with parameters.prompt_extend true."
        return None

    # ------------------------------------------------------------------ task

    async def _task(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        task_id = request.path_params["task_id"]
        job = self.jobs.get(task_id)
        request_id = str(uuid.uuid4())
        if job is None:
            unknown = {"output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            return self.reply({"request_id": request_id, **unknown})
        return self.reply({"request_id": request_id, **self.task_body(job)})

    async def _cancel(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        job = self.jobs.get(request.path_params["task_id"])
        if job is None:
            return self.error(404, "The task does not exist.", "InvalidParameter")
        if self.state_of(job) != "queued":
            return self.error(
                400,
                "Failed to cancel the task, please confirm task status.",
                "UnsupportedOperation",
            )
        job.canceled = True
        return self.reply({"request_id": str(uuid.uuid4())})

    def task_body(self, job: FakeJob) -> dict[str, Any]:
        state = self.state_of(job)
        words = {
            "queued": "PENDING",
            "running": "RUNNING",
            "succeeded": "SUCCEEDED",
            "failed": "FAILED",
            "canceled": "CANCELED",
        }
        output: dict[str, Any] = {
            "task_id": job.id,
            "task_status": self.force_status or words[state],
            "submit_time": _stamp(job.created),
        }
        if state != "queued":
            output["scheduled_time"] = _stamp(job.created + 0.2 * self.script.latency_s)
        body: dict[str, Any] = {"output": output}
        if job.completed is not None:
            output["end_time"] = _stamp(job.completed)
        prompt = (job.body.get("input") or {}).get("prompt")
        if state == "succeeded":
            output.update(orig_prompt=prompt, actual_prompt=prompt, video_url=self.media_url(job))
            params = job.body.get("parameters") or {}
            body["usage"] = {
                "video_duration": params.get("duration", 5),
                "video_ratio": params.get("size", "1280*720"),
                "video_count": 1,
            }
        elif state == "failed":
            output.update(code="InternalError", message=job.fail_reason)
        return body
