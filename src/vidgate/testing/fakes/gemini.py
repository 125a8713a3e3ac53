"""A fake Gemini Developer API serving Veo (specs/upstream-protocols.md §4a).

- ``POST /v1beta/models/{model}:predictLongRunning``
  -> ``{"name": "models/{model}/operations/{id}"}``
- ``GET /v1beta/models/{model}/operations/{id}``: ``{"name"}`` while queued, ``done: false``
  while running, then ``done: true`` with ``response.generateVideoResponse`` or ``error``.
- ``GET /v1beta/files/{id}:download?alt=media``: needs the key, redirects to the MP4.

Auth is ``x-goog-api-key`` (or ``?key=``): a missing key is 403 PERMISSION_DENIED, a
wrong one 400 INVALID_ARGUMENT with reason ``API_KEY_INVALID``, as Google answers.
``script.content_policy`` ends the job safety-filtered (no samples,
``raiMediaFilteredCount: 1``), which is how Veo reports blocked content. Scripted HTTP
errors come in Google's ``{"error": {code, message, status}}`` envelope. The Veo
body checks here are shared with the Vertex fake.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream

STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
VERTEX_ONLY = (
    "seed", "fps", "generateAudio", "storageUri", "pubsubTopic",
    "compressionQuality", "mask", "labels", "resizeMode",
)  # fmt: skip
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
PERSON_GENERATION = ("allow_all", "allow_adult", "dont_allow")
RAI_REASON = "Veo could not generate videos because the input prompt violates our usage guidelines."


def google_error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    """Google's error envelope; ``status`` is both the HTTP code and ``error.code``."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_WORDS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status)


def scripted_google_error(response: Response | None) -> Response | None:
    """Turn the base class's scripted HTTP error into Google's envelope."""
    if response is None:
        return None
    status = response.status_code
    answer = google_error(status, f"scripted HTTP {status}")
    if "retry-after" in response.headers:
        answer.headers["retry-after"] = response.headers["retry-after"]
    return answer


def _image_problem(image: Any, *, vertex: bool) -> str | None:
    if not isinstance(image, dict):
        return "image must be an object"
    if "gcsUri" in image and not vertex:
        return "gcsUri is not supported in the Gemini API; use bytesBase64Encoded."
    if not isinstance(image.get("bytesBase64Encoded") or image.get("gcsUri"), str):
        return "image needs bytesBase64Encoded or gcsUri"
    if not str(image.get("mimeType", "")).startswith("image/"):
        return "image.mimeType must be an image type"
    return None


def veo_problem(body: dict[str, Any], *, vertex: bool) -> str | None:
    """What is wrong with a Veo ``predictLongRunning`` body, or None when it is valid."""
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return "instances must hold exactly one instance"
    instance = instances[0]
    if not instance.get("prompt") and "image" not in instance:
        return "instances[0].prompt is required"
    for key in ("image", "lastFrame"):
        if key in instance and (problem := _image_problem(instance[key], vertex=vertex)):
            return f"instances[0].{key}: {problem}"
    for ref in instance.get("referenceImages", []):
        if ref.get("referenceType") not in ("ASSET", "STYLE", "asset", "style"):
            return "referenceImages[].referenceType must be ASSET or STYLE"
        if problem := _image_problem(ref.get("image"), vertex=vertex):
            return f"referenceImages[].image: {problem}"
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        return "parameters must be an object"
    if not vertex and (refused := [k for k in VERTEX_ONLY if k in params or k in body]):
        return f"`{refused[0]}` isn't supported by the Gemini API."
    checks: list[tuple[str, Any]] = [
        ("aspectRatio", ASPECT_RATIOS),
        ("resolution", RESOLUTIONS),
        ("personGeneration", PERSON_GENERATION),
    ]
    for key, allowed in checks:
        if key in params and params[key] not in allowed:
            return f"parameters.{key} must be one of {', '.join(allowed)}"
    duration = params.get("durationSeconds", 8)
    if not isinstance(duration, int) or not 4 <= duration <= 8:
        return "parameters.durationSeconds must be an integer from 4 to 8"
    return None


async def json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class GeminiFake(FakeUpstream):
    """Veo on the Gemini API, with its long-running operations and keyed file downloads."""

    name = "gemini"
    chaos_exempt = (r"\.mp4$", r":download$")  # media and tokens are not API calls

    def routes(self) -> list[Route]:
        return [
            Route("/v1beta/models/{model}:predictLongRunning", self.create, methods=["POST"]),
            Route("/v1beta/models/{model}/operations/{op}", self.operation, methods=["GET"]),
            Route("/v1beta/files/{file_id}:download", self.download, methods=["GET"]),
        ]

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []  # headers of each API call, for tests

    async def preamble(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        return scripted_google_error(await super().preamble(request, submit=submit))

    def _auth_error(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity "
                "to call this API.",
            )
        if key != self.api_key:
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            return google_error(400, "API key not valid. Please pass a valid API key.", [info])
        return None

    async def create(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=True) or self._auth_error(request):
            return failure
        body = await json_body(request)
        if body is None:
            return google_error(400, "Invalid JSON payload received.")
        if problem := veo_problem(body, vertex=False):
            return google_error(400, problem)
        model = request.path_params["model"]
        job = self.new_job(body, job_id=uuid.uuid4().hex[:12])
        job.extra.update(model=model, filtered=self.script.content_policy)
        return self.reply({"name": f"models/{model}/operations/{job.id}"})

    async def operation(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=False) or self._auth_error(request):
            return failure
        job = self.jobs.get(request.path_params["op"])
        if job is None or job.extra.get("model") != request.path_params["model"]:
            return google_error(404, "Operation not found.")
        name = f"models/{job.extra['model']}/operations/{job.id}"
        return self.reply(self._operation_body(job, name))

    def _operation_body(self, job: FakeJob, name: str) -> dict[str, Any]:
        state = self.state_of(job)
        if state == "queued":
            return {"name": name}
        if state == "running":
            return {"name": name, "done": False}
        if state == "failed":
            error = {"code": 3, "message": job.fail_reason, "status": "INVALID_ARGUMENT"}
            return {"name": name, "done": True, "error": error}
        result: dict[str, Any] = {"raiMediaFilteredCount": 0}
        if job.extra.get("filtered"):
            result = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
        else:
            uri = f"{self.base_url}/v1beta/files/{job.id}:download?alt=media"
            result["generatedSamples"] = [{"video": {"uri": uri}}]
        response = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
            "generateVideoResponse": result,
        }
        return {"name": name, "done": True, "response": response}

    async def download(self, request: Request) -> Response:
        if failure := self._auth_error(request):
            return failure
        job = self.jobs.get(request.path_params["file_id"])
        if job is None or job.completed is None:
            return google_error(404, "File not found.")
        return RedirectResponse(self.media_url(job), 302)
