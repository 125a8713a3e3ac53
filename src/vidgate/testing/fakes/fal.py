"""A fake fal.ai queue: any endpoint id, status / result / cancel URLs, signed webhooks.

Speaks the wire format of specs/upstream-protocols.md §1:

- ``POST /{endpoint_id}[?fal_webhook=...]`` for *any* endpoint id path (e.g.
  ``fal-ai/kling-video/v2.5-turbo/pro/text-to-video``), with ``Authorization: Key ...``
  (401 ``{"detail": ...}`` otherwise) and the model input as the body (a missing
  ``prompt`` is a 422 with a pydantic-style ``detail`` list). The answer carries
  ``request_id`` and URLs under the app id (``owner/alias``): the sub-path is dropped.
- ``GET /{app}/requests/{id}/status``: ``IN_QUEUE`` (``queue_position``) ->
  ``IN_PROGRESS`` (with ``logs`` when ``?logs=1``) -> ``COMPLETED`` (``error`` /
  ``error_type`` set when the job failed). Not-yet-completed answers are 202.
- ``GET /{app}/requests/{id}``: ``{"video": File}``; a content-policy refusal is a 422
  whose ``detail`` has ``type: content_policy_violation``.
- ``PUT /{app}/requests/{id}/cancel``: 202 ``CANCELLATION_REQUESTED`` while queued,
  400 ``ALREADY_COMPLETED`` afterwards.
- Webhooks: when the job ends, ``{"request_id","gateway_request_id","status":"OK"|"ERROR",
  "payload","error"}`` is POSTed to ``fal_webhook``, signed with Ed25519 over
  ``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(body)}"`` with a key pair made at
  start-up; the public key is served as a JWKS at ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream

NAMESPACES = ("workflows", "comfy")
CONTENT_POLICY_MESSAGE = "The content could not be processed because it was flagged by a content checker."


def app_of(endpoint: str) -> str | None:
    parts = [p for p in endpoint.split("/") if p]
    keep = 3 if parts and parts[0] in NAMESPACES else 2
    return "/".join(parts[:keep]) if len(parts) >= keep else None


# Image-to-video endpoints whose first frame is not ``image_url`` (fal's model pages):
# Kling 3.0 Pro/Standard take ``start_image_url``; its Turbo tier and O3 take ``image_url``.
_FIRST_FRAME_FIELD = {
    "fal-ai/kling-video/v3/pro/image-to-video": "start_image_url",
    "fal-ai/kling-video/v3/standard/image-to-video": "start_image_url",
}


def first_frame_field(endpoint: str) -> str | None:
    """The field an image-to-video endpoint requires for its first frame; None for text-to-video."""
    if endpoint in _FIRST_FRAME_FIELD:
        return _FIRST_FRAME_FIELD[endpoint]
    return "image_url" if endpoint.rstrip("/").endswith("image-to-video") else None


def _detail(message: str, kind: str, loc: list[str] | None = None) -> dict[str, Any]:
    return {
        "detail": [
            {
                "loc": loc or ["body"],
                "msg": message,
                "type": kind,
                "url": f"https://docs.fal.ai/errors#{kind}",
            }
        ]
    }


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object, or {} (Starlette caches the body the preamble read)."""
    try:
        parsed = json.loads(await request.body() or b"null")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class FalFake(FakeUpstream):
    """fal's queue API with a clock and a webhook signing key; see the module docstring."""

    name = "fal"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.signing_key = Ed25519PrivateKey.generate()
        self.key_id = uuid.uuid4().hex[:16]
        self.user_id = "fake-user"
        self.seen_headers: list[dict[str, str]] = []

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/jwks.json", self._jwks, methods=["GET"]),
            Route("/{app:path}/requests/{request_id}/status", self._status, methods=["GET"]),
            Route("/{app:path}/requests/{request_id}/cancel", self._cancel, methods=["PUT"]),
            Route("/{app:path}/requests/{request_id}", self._result, methods=["GET"]),
            Route("/{endpoint:path}", self._submit, methods=["POST"]),
        ]

    # ------------------------------------------------------------- signing

    def jwks(self) -> dict[str, Any]:
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.key_id, "use": "sig"}]}

    def sign(self, request_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The four ``X-Fal-Webhook-*`` headers for ``body``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        message = f"{request_id}\n{self.user_id}\n{ts}\n{hashlib.sha256(body).hexdigest()}"
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": self.user_id,
            "X-Fal-Webhook-Timestamp": ts,
            "X-Fal-Webhook-Signature": self.signing_key.sign(message.encode()).hex(),
        }

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(self.jwks())

    # -------------------------------------------------------------- helpers

    async def _enter(self, request: Request, *, submit: bool) -> Response | None:
        if early := await self.preamble(request, submit=submit):
            return early
        self.seen_headers.append(dict(request.headers))
        if request.headers.get("authorization", "") != f"Key {self.api_key}":
            return JSONResponse({"detail": "No user found for Key ID and Secret"}, 401)
        return None

    def _job(self, request: Request) -> FakeJob | None:
        job = self.jobs.get(request.path_params["request_id"])
        if job is None or job.extra.get("app") != request.path_params["app"]:
            return None
        return job

    def _urls(self, job: FakeJob) -> dict[str, str]:
        base = f"{self.base_url}/{job.extra['app']}/requests/{job.id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _queue_position(self, job: FakeJob) -> int:
        return sum(
            1
            for other in self.jobs.values()
            if other.created < job.created and self.state_of(other) == "queued"
        )

    def _video(self, job: FakeJob) -> dict[str, Any]:
        return {
            "video": {
                "url": self.media_url(job),
                "content_type": "video/mp4",
                "file_name": f"{job.id}.mp4",
                "file_size": 0,
            }
        }

    # ------------------------------------------------------------ endpoints

    async def _submit(self, request: Request) -> Response:
        if early := await self._enter(request, submit=True):
            return early
        endpoint = request.path_params["endpoint"]
        app = app_of(endpoint)
        body = await json_object(request)
        if app is None:
            return JSONResponse({"detail": f"Application '{endpoint}' not found"}, 404)
        if not isinstance(body.get("prompt"), str):
            missing = _detail("field required", "missing", ["body", "prompt"])
            return JSONResponse(missing, 422)
        image_field = first_frame_field(endpoint)
        if image_field and not isinstance(body.get(image_field), str):
            missing = _detail("field required", "missing", ["body", image_field])
            return JSONResponse(missing, 422)
        job = self.new_job(body, callback_url=request.query_params.get("fal_webhook"))
        job.extra.update(app=app, endpoint=endpoint, content_policy=self.script.content_policy)
        if job.callback_url:
            self.when_done(job, lambda: self._send_webhook(job))
        answer = {"request_id": job.id, "gateway_request_id": job.id, **self._urls(job)}
        return self.reply({**answer, "queue_position": self._queue_position(job)})

    async def _status(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self._job(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, 404)
        state = self.state_of(job)
        response_url = self._urls(job)["response_url"]
        if state == "queued":
            body: dict[str, Any] = {
                "status": "IN_QUEUE",
                "queue_position": self._queue_position(job),
            }
            return self.reply({**body, "response_url": response_url}, 202)
        if state == "running":
            logs = [{"message": "generating", "level": "INFO", "source": "user", "timestamp": "now"}]
            with_logs = request.query_params.get("logs") in ("1", "true")
            body = {"status": "IN_PROGRESS", "logs": logs if with_logs else None}
            return self.reply({**body, "response_url": response_url}, 202)
        error, error_type = None, None
        if state == "canceled":
            error, error_type = "Request was cancelled", None
        elif job.fail_reason:
            error, error_type = job.fail_reason, "internal_server_error"
        done = {"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 1.0}}
        return self.reply({**done, "response_url": response_url, "error": error, "error_type": error_type})

    async def _result(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self._job(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, 404)
        state = self.state_of(job)
        if state in ("queued", "running"):
            return JSONResponse({"detail": "Request is still in progress"}, 400)
        if state == "canceled":
            return JSONResponse({"detail": "Request was cancelled"}, 400)
        if job.fail_reason:
            failed = _detail(job.fail_reason, "internal_server_error")
            return JSONResponse(failed, 500, headers={"x-fal-error-type": "internal_server_error"})
        if job.extra.get("content_policy"):
            # The type only in the header, as fal's SDK reads it: the body's detail is a
            # plain string, so an adapter that ignores x-fal-error-type misses the policy.
            policy = {"detail": CONTENT_POLICY_MESSAGE}
            return JSONResponse(policy, 422, headers={"x-fal-error-type": "content_policy_violation"})
        return self.reply(self._video(job))

    async def _cancel(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self._job(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, 404)
        if self.state_of(job) != "queued":
            return JSONResponse({"status": "ALREADY_COMPLETED"}, 400)
        job.canceled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, 202)

    # ------------------------------------------------------------- webhook

    async def _send_webhook(self, job: FakeJob) -> None:
        if job.canceled or job.callback_url is None:
            return
        payload: dict[str, Any] = {"request_id": job.id, "gateway_request_id": job.id}
        if job.fail_reason:
            detail = _detail(job.fail_reason, "internal_server_error")
            payload.update(status="ERROR", error="Invalid status code: 500", payload=detail)
        elif job.extra.get("content_policy"):
            detail = _detail(CONTENT_POLICY_MESSAGE, "content_policy_violation", ["body", "prompt"])
            payload.update(status="ERROR", error="Invalid status code: 422", payload=detail)
        else:
            payload.update(status="OK", error=None, payload=self._video(job))
        self.call_back(job.callback_url, payload, sign=lambda body: self.sign(job.id, body))
