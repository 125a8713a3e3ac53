"""A fake xAI Grok Imagine video API: ``/v1/videos/generations`` and ``/v1/videos/{id}``.

Speaks the wire format of specs/upstream-protocols.md §11a: Bearer auth (a wrong key is
answered 400 ``"Incorrect API key provided: ..."``, as xAI does; a missing one 401),
bodies checked against the documented ranges (``duration`` 1-15, the aspect ratios,
``480p|720p``, and ``1080p`` on ``grok-imagine-video-1.5``, ``image`` xor
``reference_images``), ``{"request_id"}`` on submit, then
``{"status": "pending"}`` until ``done`` (``video.url``) or ``failed`` (``error``), and
``{"code", "error"}`` bodies for HTTP errors. A content-policy script ends the request
``done`` with ``respect_moderation: false`` (UNCONFIRMED shape). xAI has no callbacks
and no cancel, so ``script.send_callbacks`` has no effect.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream

ASPECT_RATIOS = {"1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"}
RESOLUTIONS = {"480p", "720p"}
# Grok Imagine Video 1.5 adds 1080p (xAI's 1.5 release, as the AI SDK's xAI provider maps it).
RESOLUTIONS_BY_MODEL = {"grok-imagine-video-1.5": RESOLUTIONS | {"1080p"}}

_CODES = {
    400: "Client specified an invalid argument",
    401: "Unauthenticated",
    403: "The caller does not have permission to execute the specified operation",
    404: "Some requested entity was not found",
    429: "Too many requests",
}


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} (Starlette caches the body the preamble read)."""
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _mask(key: str) -> str:
    return f"{key[:2]}***{key[-2:]}" if len(key) > 4 else "***"


class XaiFake(FakeUpstream):
    """xAI's deferred video requests with a clock; see the module docstring."""

    name = "xai"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []
        self.force_status: str | None = None  # answer polls with this status word (tests)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/videos/generations", self._create, methods=["POST"]),
            Route("/v1/videos/{request_id}", self._video, methods=["GET"]),
        ]

    # ------------------------------------------------------------- plumbing

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        code = _CODES.get(status, "Internal error")
        return JSONResponse({"code": code, "error": message}, status, headers=headers)

    async def _gate(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        scripted = await self.preamble(request, submit=submit)
        if scripted is not None:
            retry = scripted.headers.get("retry-after")
            headers = {"retry-after": retry} if retry else None
            code = scripted.status_code
            return self.error(code, f"scripted HTTP {code}", headers)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer ") :]:
            return self.error(401, "No API key provided.")
        key = auth[len("Bearer ") :]
        if key != self.api_key:
            return self.error(
                400,
                f"Incorrect API key provided: {_mask(key)}. "
                "You can obtain an API key from https://console.x.ai.",
            )
        return None

    # ---------------------------------------------------------------- create

    async def _create(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=True)) is not None:
            return early
        body = await json_body(request)
        if problem := self._invalid(body):
            return self.error(400, problem)
        job = self.new_job(body)
        if self.script.content_policy:
            job.extra["moderated"] = True
        return self.reply({"request_id": job.id})

    def _invalid(self, body: dict[str, Any]) -> str | None:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not model.startswith("grok-imagine-video"):
            return f"The model {model!r} does not exist or your team does not have access to it."
        if not isinstance(prompt, str) or len(prompt) > 4096:
            return "prompt must be a string of at most 4096 characters"
        duration = body.get("duration", 8)
        if not isinstance(duration, int) or not 1 <= duration <= 15:
            return "duration must be an integer between 1 and 15"
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return f"Invalid aspect_ratio: {body.get('aspect_ratio')!r}"
        if body.get("resolution", "720p") not in RESOLUTIONS_BY_MODEL.get(model, RESOLUTIONS):
            return f"Invalid resolution: {body.get('resolution')!r}"
        image, references = body.get("image"), body.get("reference_images")
        if image is not None and references is not None:
            return "image and reference_images cannot be used together"
        if image is not None and not (isinstance(image, dict) and isinstance(image.get("url"), str)):
            return "image must be an object with a url"
        if references is not None and not (
            isinstance(references, list)
            and all(isinstance(r, dict) and isinstance(r.get("url"), str) for r in references)
        ):
            return "reference_images must be a list of objects with a url"
        return None

    # ----------------------------------------------------------------- video

    async def _video(self, request: Request) -> Response:
        if (early := await self._gate(request, submit=False)) is not None:
            return early
        job = self.jobs.get(request.path_params["request_id"])
        if job is None:
            return self.error(404, "Video request not found")
        return self.reply(self.video_body(job))

    def video_body(self, job: FakeJob) -> dict[str, Any]:
        state = self.state_of(job)
        model = job.body.get("model", "grok-imagine-video")
        duration = job.body.get("duration", 8)
        if self.force_status:
            return {"status": self.force_status}
        if state in ("queued", "running"):
            return {"status": "pending"}
        if state == "failed":
            return {
                "status": "failed",
                "video": {"duration": 0, "respect_moderation": True},
                "model": "",
                "error": {"code": "internal_error", "message": job.fail_reason},
            }
        moderated = bool(job.extra.get("moderated"))
        return {
            "status": "done",
            "model": model,
            "video": {
                "url": self.media_url(job),
                "duration": duration,
                "respect_moderation": not moderated,
            },
            "usage": {"cost_in_usd_ticks": 5000 * duration},
        }
