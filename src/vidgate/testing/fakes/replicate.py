"""A fake Replicate API: predictions (three create routes), cancel, signed webhooks.

Speaks the wire format of specs/upstream-protocols.md §2:

- ``POST /v1/predictions`` (``version``), ``POST /v1/models/{owner}/{name}/predictions``
  and ``POST /v1/deployments/{owner}/{name}/predictions``, with ``Authorization: Bearer``
  (401 problem JSON otherwise) and ``{"input": {...}, "webhook"?, "webhook_events_filter"?}``;
  bad input is a 422 problem JSON. The answer is a 201 Prediction.
- ``GET /v1/predictions/{id}``: ``starting`` -> ``processing`` (tqdm progress in ``logs``)
  -> ``succeeded`` (``output`` is one URI) / ``failed`` (``error``) / ``canceled``.
  ``script.output_ttl_s`` plays Replicate's 1 h retention: after it, ``data_removed`` is
  true, ``output`` is null and the file answers 403.
- ``POST /v1/predictions/{id}/cancel`` returns the Prediction.
- ``GET /v1/webhooks/default/secret`` -> ``{"key": "whsec_..."}``; webhooks POST the
  Prediction signed with Standard Webhooks for the events in the filter (``start``,
  ``completed``; without a filter only ``completed``).

Replicate has no structured content-policy error: ``script.content_policy`` fails the
prediction with the kind of message a moderated model gives.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.testing.fake import FakeJob, FakeScript, FakeUpstream, bearer_ok

FLAGGED = "The input or output was flagged as sensitive. Please try again with different inputs."
EVENTS = {"start", "output", "logs", "completed"}


def problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail, "status": status}, status)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ReplicateFake(FakeUpstream):
    """Replicate's predictions API with a clock; see the module docstring."""

    name = "replicate"

    def __init__(
        self, *, api_key: str = "test-key", script: FakeScript | None = None, **options: Any
    ) -> None:
        super().__init__(api_key=api_key, script=script, **options)
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.seen_headers: list[dict[str, str]] = []

    def routes(self) -> list[Route]:
        return [
            Route("/v1/predictions", self._create, methods=["POST"]),
            Route("/v1/models/{owner}/{model}/predictions", self._create, methods=["POST"]),
            Route("/v1/deployments/{owner}/{model}/predictions", self._create, methods=["POST"]),
            Route("/v1/predictions/{pid}", self._get, methods=["GET"]),
            Route("/v1/predictions/{pid}/cancel", self._cancel, methods=["POST"]),
            Route("/v1/webhooks/default/secret", self._secret, methods=["GET"]),
        ]

    def sign(self, body: bytes, msg_id: str | None = None, when: float | None = None) -> dict[str, str]:
        """Standard Webhooks headers for ``body`` under this fake's secret."""
        msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
        stamp = datetime.fromtimestamp(time.time() if when is None else when, UTC)
        signature = Webhook(self.webhook_secret).sign(msg_id, stamp, body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signature,
        }

    # -------------------------------------------------------------- helpers

    async def _enter(self, request: Request, *, submit: bool) -> Response | None:
        if early := await self.preamble(request, submit=submit):
            return early
        self.seen_headers.append(dict(request.headers))
        if not bearer_ok(request, self.api_key):
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    def _prediction(self, job: FakeJob) -> dict[str, Any]:
        state = self.state_of(job)
        status = {"queued": "starting", "running": "processing"}.get(state, state)
        output: Any = None
        error: str | None = None
        logs = ""
        removed = False
        if state == "running":
            pct = int(job.progress(self.script.latency_s) * 100)
            left = max(0, int(self.script.latency_s * (100 - pct) / 100))
            logs = f"{pct:3d}%|{'#' * (pct // 10):<10}| {pct}/100 [00:00<00:{left:02d}, 9.0it/s]"
        elif state == "succeeded":
            ttl = self.script.output_ttl_s
            removed = ttl is not None and job.completed is not None and time.time() - job.completed > ttl
            output = None if removed else self.media_url(job)
            logs = "100%|##########| 100/100 [00:01<00:00, 9.0it/s]"
        elif state == "failed":
            error = job.fail_reason
        base = f"{self.base_url}/v1/predictions/{job.id}"
        return {
            "id": job.id,
            "model": job.extra.get("model", "owner/model"),
            "version": job.extra.get("version", "hidden"),
            "input": job.body.get("input", {}),
            "output": output,
            "logs": logs,
            "error": error,
            "status": status,
            "data_removed": removed,
            "created_at": _iso(job.created),
            "started_at": _iso(job.created) if state != "queued" else None,
            "completed_at": _iso(job.completed),
            "urls": {"get": base, "cancel": f"{base}/cancel", "web": f"{self.base_url}/p/{job.id}"},
            "metrics": {"predict_time": 1.0} if job.completed else {},
        }

    def _webhook(self, job: FakeJob, event: str) -> None:
        wanted = job.extra.get("events")
        if job.callback_url and event in (wanted if wanted else {"completed"}):
            body = self._prediction(job)
            self.call_back(job.callback_url, body, sign=self.sign)

    # ------------------------------------------------------------ endpoints

    async def _create(self, request: Request) -> Response:
        if early := await self._enter(request, submit=True):
            return early
        try:
            body = json.loads(await request.body())
        except ValueError:
            return problem(400, "Invalid JSON", "The request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return problem(422, "Input validation failed", "- input: input is required")
        if request.url.path == "/v1/predictions" and not isinstance(body.get("version"), str):
            return problem(422, "Input validation failed", "- version: version is required")
        if not isinstance(body["input"].get("prompt"), str):
            return problem(422, "Input validation failed", "- input: prompt is required")
        events = body.get("webhook_events_filter") or []
        if not isinstance(events, list) or not set(events) <= EVENTS:
            return problem(422, "Input validation failed", "- webhook_events_filter: invalid event")
        job = self.new_job(body, callback_url=body.get("webhook"))
        if self.script.content_policy:
            job.fail_reason = FLAGGED
        owner, model = request.path_params.get("owner"), request.path_params.get("model")
        job.extra.update(events=events, version=body.get("version") or "hidden")
        job.extra["model"] = f"{owner}/{model}" if owner else str(body.get("version"))
        self._webhook(job, "start")
        self.when_done(job, lambda: self._finish(job))
        return self.reply(self._prediction(job), 201)

    async def _finish(self, job: FakeJob) -> None:
        if not job.canceled:
            self._webhook(job, "completed")

    async def _get(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self.jobs.get(request.path_params["pid"])
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found")
        return self.reply(self._prediction(job))

    async def _cancel(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        job = self.jobs.get(request.path_params["pid"])
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found")
        if self.state_of(job) in ("queued", "running"):
            job.canceled = True
            job.completed = time.time()
            self._webhook(job, "completed")
        return self.reply(self._prediction(job))

    async def _secret(self, request: Request) -> Response:
        if early := await self._enter(request, submit=False):
            return early
        return self.reply({"key": self.webhook_secret})
