"""A fake OpenAI Videos API: ``/v1/videos``, its ``/content`` download, delete, webhooks.

Speaks the wire format of specs/upstream-protocols.md §3:

- ``POST /v1/videos`` as multipart only, as the current SDK sends it (a JSON create
  is refused with 400, so an adapter that regresses to JSON is caught), with
  ``Authorization: Bearer`` (401 ``invalid_api_key`` otherwise); ``prompt`` is required,
  ``seconds`` is a string in 4/8/12 (16/20 too, as the guide says), ``size`` one of the
  documented sizes, ``input_reference`` ``{"image_url"|"file_id"}`` or a file part. Bad
  input is a 400 in OpenAI's ``{"error": {...}}`` envelope; ``script.content_policy``
  refuses the prompt with a 400 ``moderation_blocked``.
- ``GET /v1/videos/{id}``: ``queued`` -> ``in_progress`` (``progress``) -> ``completed``
  (``completed_at``, ``expires_at`` = completion + ``script.output_ttl_s`` or 1 h) /
  ``failed`` (``error: {code, message}``), with an ``openai-poll-after-ms`` header.
- ``GET /v1/videos/{id}/content?variant=video``: the MP4, Bearer auth required; 404
  before completion and after ``expires_at``.
- ``DELETE /v1/videos/{id}`` -> ``{"id","object":"video.deleted","deleted":true}``.
- Webhooks are per project: set ``fake.webhook_url`` and ``video.completed`` /
  ``video.failed`` events are POSTed, signed (Standard Webhooks) with ``fake.webhook_secret``.
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok, sample_mp4

SECONDS = {"4", "8", "12", "16", "20"}
SIZES = {"720x1280", "1280x720", "1024x1792", "1792x1024", "1920x1080", "1080x1920"}


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status)


async def create_body(request: Request) -> dict[str, Any] | None:
    """The create fields of a multipart body; None when the body is not multipart."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body: dict[str, Any] = {}
        async with request.form() as form:  # closes the spooled upload files
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    body[key] = {"file": value.filename}
                elif key.startswith("input_reference[") and key.endswith("]"):
                    body.setdefault("input_reference", {})[key[16:-1]] = value
                else:
                    body[key] = value
        return body
    return None


def _problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) of the first invalid field, or None when the body is valid."""
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return "Missing required parameter: 'prompt'.", "prompt"
    if "seconds" in body and body["seconds"] not in SECONDS:
        return f"Invalid value: '{body['seconds']}'. Supported values are 4, 8 and 12.", "seconds"
    if "size" in body and body["size"] not in SIZES:
        return f"Invalid value: '{body['size']}'. Supported sizes are {sorted(SIZES)}.", "size"
    ref = body.get("input_reference")
    if ref is not None and not (isinstance(ref, dict) and {"image_url", "file_id", "file"} & set(ref)):
        return "input_reference needs an image_url, a file_id or a file.", "input_reference"
    return None


class OpenAICompatFake(FakeUpstream):
    """OpenAI's Videos API with a clock; see the module docstring."""

    name = "openai"
    chaos_exempt = (r"\.mp4$", r"/content$")  # media and tokens are not API calls

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.webhook_url: str | None = None  # the project's webhook endpoint (dashboard setting)
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.seen_headers: list[dict[str, str]] = []
        self.create_bodies: list[dict[str, Any]] = []  # parsed JSON or multipart fields

    def routes(self) -> list[Route]:
        return [
            Route("/v1/videos", self._create, methods=["POST"]),
            Route("/v1/videos/{video_id}", self._video, methods=["GET", "DELETE"]),
            Route("/v1/videos/{video_id}/content", self._content, methods=["GET"]),
        ]

    def sign(self, body: bytes, when: float | None = None) -> dict[str, str]:
        msg_id = f"wh_{secrets.token_hex(12)}"
        stamp = datetime.fromtimestamp(time.time() if when is None else when, UTC)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(self.webhook_secret).sign(msg_id, stamp, body.decode()),
        }

    # -------------------------------------------------------------- helpers

    async def _enter(self, request: Request, *, submit: bool) -> Response | None:
        if early := await self.preamble(request, submit=submit):
            return early
        self.seen_headers.append(dict(request.headers))
        if not bearer_ok(request, self.api_key):
            message = "Incorrect API key provided. You can find your API key in your account."
            return openai_error(401, message, code="invalid_api_key")
        return None

    def _expires_at(self, job: FakeJob) -> float | None:
        if job.completed is None:
            return None
        ttl = self.script.output_ttl_s
        return job.completed + (3600 if ttl is None else ttl)

    def _object(self, job: FakeJob) -> dict[str, Any]:
        state = self.state_of(job)
        status = {"running": "in_progress", "succeeded": "completed"}.get(state, state)
        progress = int(job.progress(self.script.latency_s) * 100) if state == "running" else 0
        video: dict[str, Any] = {
            "id": job.id,
            "object": "video",
            "model": job.body.get("model") or "sora-2",
            "status": status,
            "progress": 100 if state in ("succeeded", "failed") else progress,
            "created_at": int(job.created),
            "completed_at": int(job.completed) if job.completed else None,
            "expires_at": None,
            "prompt": job.body.get("prompt"),
            "seconds": job.body.get("seconds") or "4",
            "size": job.body.get("size") or "720x1280",
            "remixed_from_video_id": None,
            "error": None,
        }
        if state == "succeeded":
            video["expires_at"] = int(self._expires_at(job) or 0)
        if state == "failed":
            video["error"] = {"code": "video_generation_failed", "message": job.fail_reason}
        return video

    async def _notify(self, job: FakeJob) -> None:
        if self.webhook_url is None or job.canceled:
            return
        kind = "video.failed" if job.fail_reason else "video.completed"
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "created_at": int(time.time()),
            "type": kind,
            "data": {"id": job.id},
        }
        self.call_back(self.webhook_url, event, sign=self.sign)

    # ------------------------------------------------------------ endpoints

    async def _create(self, request: Request) -> Response:
        if early := await self._enter(request, submit=True):
            return early
        body = await create_body(request)
        if body is None:
            message = "Expected a multipart/form-data body (as the openai SDK sends video creates)."
            return openai_error(400, message)
        self.create_bodies.append(body)
        if problem := _problem(body):
            return openai_error(400, problem[0], param=problem[1], code="invalid_value")
        if self.script.content_policy:
            message = "Your request was blocked by our moderation system."
            return openai_error(400, message, code="moderation_blocked")
        job = self.new_job(body, job_id=f"video_{secrets.token_hex(16)}")
        self.when_done(job, lambda: self._notify(job))
        return self.reply(self._object(job))

    async def _video(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self.jobs.get(request.path_params["video_id"])
        if job is None or job.extra.get("deleted"):
            return openai_error(404, "Video not found", param="video_id", code="not_found")
        if request.method == "DELETE":
            job.canceled = True
            job.extra["deleted"] = True
            return self.reply({"id": job.id, "object": "video.deleted", "deleted": True})
        wait_ms = str(max(100, int(self.script.latency_s * 200)))
        return self.reply(self._object(job), headers={"openai-poll-after-ms": wait_ms})

    async def _content(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self.jobs.get(request.path_params["video_id"])
        if job is None or job.extra.get("deleted") or self.state_of(job) != "succeeded":
            return openai_error(404, "Video content is not available", code="not_found")
        expires_at = self._expires_at(job)
        if expires_at is not None and time.time() > expires_at:
            return openai_error(404, "Video content has expired", code="not_found")
        variant = request.query_params.get("variant", "video")
        if variant != "video":
            return openai_error(400, f"The fake only serves variant=video, not {variant}")
        return Response(sample_mp4(self.script.video_seconds), media_type="video/mp4")
