"""A fake Vertex AI serving Veo, plus the GCS and OAuth endpoints it leans on (§4b).

- ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning``
  -> ``{"name": "projects/.../models/{m}/operations/{uuid}"}``
- ``POST .../models/{m}:fetchPredictOperation`` with ``{"operationName"}``: ``{"name"}``
  while queued, ``done: false`` while running, then ``response.videos`` or ``error``.
  Videos are ``gcsUri`` when ``parameters.storageUri`` was given, else inline
  ``bytesBase64Encoded``.
- ``GET /storage/v1/b/{bucket}/o/{object}?alt=media``: the GCS JSON API download.
- ``POST /token``: an OAuth2 token endpoint for service-account JWT grants; it hands
  out the fake's ``api_key`` as the access token.

Every API call needs ``Authorization: Bearer <api_key>``; anything else gets Google's
401 UNAUTHENTICATED. ``script.content_policy`` ends jobs RAI-filtered. When
``script.output_ttl_s`` has passed, GCS objects answer 404 and, for inline outputs,
the operation itself is gone (404), which is when the video can no longer be had.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, sample_mp4
from vidgate.testing.fakes.gemini import (
    RAI_REASON,
    google_error,
    json_body,
    scripted_google_error,
    veo_problem,
)

MODEL_PATH = "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}"
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class VertexFake(FakeUpstream):
    """Veo on Vertex AI with fetchPredictOperation polling, GCS downloads and a token endpoint."""

    name = "vertex"
    chaos_exempt = (r"\.mp4$", r"^/storage/v1/", r"^/token$")  # media and tokens are not API calls

    def routes(self) -> list[Route]:
        return [
            Route(MODEL_PATH + ":predictLongRunning", self.create, methods=["POST"]),
            Route(MODEL_PATH + ":fetchPredictOperation", self.fetch, methods=["POST"]),
            Route("/storage/v1/b/{bucket}/o/{object:path}", self.gcs_object, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
        ]

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.seen_headers: list[dict[str, str]] = []  # headers of each API call, for tests
        self.token_grants: list[dict[str, Any]] = []  # claims of each JWT grant at /token

    async def preamble(self, request: Request, *, submit: bool) -> Response | None:
        self.seen_headers.append(dict(request.headers))
        return scripted_google_error(await super().preamble(request, submit=submit))

    def _auth_error(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return google_error(401, UNAUTHENTICATED)
        return None

    @staticmethod
    def _model_path(request: Request) -> str:
        p = request.path_params
        return f"projects/{p['project']}/locations/{p['location']}/publishers/google/models/{p['model']}"

    def _expired(self, job: FakeJob) -> bool:
        ttl = self.script.output_ttl_s
        return ttl is not None and job.completed is not None and time.time() - job.completed > ttl

    async def create(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=True) or self._auth_error(request):
            return failure
        body = await json_body(request)
        if body is None:
            return google_error(400, "Invalid JSON payload received.")
        if problem := veo_problem(body, vertex=True):
            return google_error(400, problem)
        params = body.get("parameters", {})
        storage = params.get("storageUri")
        if storage is not None and not str(storage).startswith("gs://"):
            return google_error(400, "storageUri must be a gs:// URI")
        job = self.new_job(body, job_id=str(uuid.uuid4()))
        name = f"{self._model_path(request)}/operations/{job.id}"
        job.extra.update(name=name, filtered=self.script.content_policy, storage=storage)
        return self.reply({"name": name})

    async def fetch(self, request: Request) -> Response:
        if failure := await self.preamble(request, submit=False) or self._auth_error(request):
            return failure
        body = await json_body(request) or {}
        name = str(body.get("operationName", ""))
        job = self.jobs.get(name.rpartition("/operations/")[2])
        if (
            job is None
            or job.extra.get("name") != name
            or not name.startswith(self._model_path(request) + "/")
        ):
            return google_error(404, f"Operation {name} not found.")
        if self._expired(job) and not job.extra.get("storage"):
            return google_error(404, f"Operation {name} not found.")
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
        response: dict[str, Any] = {
            "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
            "raiMediaFilteredCount": 0,
        }
        if job.extra.get("filtered"):
            response.update(raiMediaFilteredCount=1, raiMediaFilteredReasons=[RAI_REASON])
        elif storage := job.extra.get("storage"):
            uri = f"{str(storage).rstrip('/')}/{job.id}/sample_0.mp4"
            response["videos"] = [{"gcsUri": uri, "mimeType": "video/mp4"}]
        else:
            data = base64.b64encode(sample_mp4(self.script.video_seconds)).decode()
            response["videos"] = [{"bytesBase64Encoded": data, "mimeType": "video/mp4"}]
        return {"name": name, "done": True, "response": response}

    async def gcs_object(self, request: Request) -> Response:
        if failure := self._auth_error(request):
            return failure
        bucket, obj = request.path_params["bucket"], request.path_params["object"]
        job_id = obj.rstrip("/").split("/")[-2] if obj.count("/") else ""
        job = self.jobs.get(job_id)
        storage = str(job.extra.get("storage") or "") if job else ""
        if (
            job is None
            or job.completed is None
            or not f"gs://{bucket}/{obj}".startswith(storage.rstrip("/") + "/")
            or self._expired(job)
        ):
            return google_error(404, f"No such object: {bucket}/{obj}")
        if request.query_params.get("alt") != "media":
            return JSONResponse({"bucket": bucket, "name": obj, "contentType": "video/mp4"})
        return Response(sample_mp4(self.script.video_seconds), media_type="video/mp4")

    async def token(self, request: Request) -> Response:
        """The OAuth2 JWT-bearer grant a service account uses (signature not checked)."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != JWT_GRANT:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        try:
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
        except jwt.PyJWTError:
            return JSONResponse({"error": "invalid_grant", "error_description": "Bad JWT"}, 400)
        if not claims.get("iss") or "cloud-platform" not in str(claims.get("scope", "")):
            return JSONResponse({"error": "invalid_scope", "error_description": "Invalid OAuth scope"}, 400)
        self.token_grants.append(claims)
        return JSONResponse({"access_token": self.api_key, "expires_in": 3599, "token_type": "Bearer"})
