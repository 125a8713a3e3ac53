"""Runway API adapter (``api.dev.runwayml.com``).

Wire facts (specs/upstream-protocols.md §7, runwayml SDK and docs.dev.runwayml.com):

- ``Authorization: Bearer <key>`` plus the required ``X-Runway-Version: 2024-11-06``.
- ``POST /v1/image_to_video`` or ``POST /v1/text_to_video`` with a camelCase body
  (``model``, ``promptText``, ``promptImage``, ``ratio`` as pixel ``W:H``, ``duration``,
  ``seed``; Veo models add ``audio`` and ``negativePrompt``); the answer is ``{"id"}``.
- ``GET /v1/tasks/{id}``: ``PENDING`` / ``THROTTLED`` (queued behind the org's
  concurrency limit) / ``RUNNING`` (``progress`` 0..1) / ``SUCCEEDED`` (``output`` URLs,
  good for 24-48 h; a new GET gives fresh ones) / ``FAILED`` (``failure``,
  ``failureCode``) / ``CANCELLED``.
- ``failureCode`` starting ``SAFETY.`` (or ``INPUT_PREPROCESSING.SAFETY.``) is content
  moderation and must not be retried.
- ``DELETE /v1/tasks/{id}`` -> 204 cancels a running task (or deletes a finished one).
- No callbacks: Runway has none, so ``parse_callback`` never recognises a call.
- HTTP errors: 400 carries ``{"error": "..."}``; 429 and 502/503/504 may be retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from vidgate.domain.request import GenerationRequest
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    JSON,
    Capability,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamContentPolicy,
    UpstreamError,
    UpstreamOutput,
    UpstreamProtocolError,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    state_for,
)
from vidgate.providers.http import accepted_id, deep_merge, dig, expect_dict, merge_under, request_json

log = logging.getLogger(__name__)

API_VERSION = "2024-11-06"

State = Literal["queued", "running", "succeeded", "failed", "canceled"]

_STATES: Mapping[str, State] = {
    "PENDING": "queued",
    "THROTTLED": "queued",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "canceled",
}

# Catalog aspect ratio (and resolution) -> Runway's pixel ratio. The most specific entry
# wins; (ratio, None) is the fallback for any resolution.
_RATIOS: Mapping[tuple[str, str | None], str] = {
    ("16:9", None): "1280:720",
    ("9:16", None): "720:1280",
    ("16:9", "1080p"): "1920:1080",
    ("9:16", "1080p"): "1080:1920",
    ("1:1", None): "960:960",
    ("4:3", None): "1104:832",
    ("3:4", None): "832:1104",
    ("21:9", None): "1584:672",
}

_SAFETY_PREFIXES = ("SAFETY.", "INPUT_PREPROCESSING.SAFETY")


def runway_ratio(aspect_ratio: str | None, resolution: str | None) -> str | None:
    """Runway's ``W:H`` pixel ratio for a catalog aspect ratio, or None when unknown."""
    if not aspect_ratio:
        return None
    width, _, height = aspect_ratio.partition(":")
    if width.isdigit() and height.isdigit() and int(width) >= 100 and int(height) >= 100:
        return aspect_ratio  # already in Runway's pixel form
    key = (resolution or "").lower() or None
    return _RATIOS.get((aspect_ratio, key)) or _RATIOS.get((aspect_ratio, None))


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    """A 400 names its problem in ``error`` and sometimes lists ``issues``; keep both."""
    if status != 400 or not isinstance(body, dict):
        return None
    message = body.get("error")
    if not isinstance(message, str) or not message:
        return None
    issues = body.get("issues")
    if isinstance(issues, list) and issues:
        details = "; ".join(str(dig(i, "message") or i) for i in issues[:5])
        message = f"{message} ({details})"
    return UpstreamRejected(message, status_code=status, request_id=request_id)


def failure_error(task: JSON, request_id: str | None = None) -> UpstreamError:
    """The error for a FAILED task: content moderation for SAFETY codes, else rejected."""
    code = task.get("failureCode")
    reason = task.get("failure")
    code_text = code if isinstance(code, str) else ""
    text = reason if isinstance(reason, str) and reason else "the task failed"
    message = f"{text} ({code_text})" if code_text else text
    if code_text.startswith(_SAFETY_PREFIXES):
        return UpstreamContentPolicy(message, request_id=request_id)
    return UpstreamRejected(message, request_id=request_id)


class RunwayAdapter(AdapterBase):
    """Runway's task API: submit, poll ``/v1/tasks/{id}``, cancel with DELETE."""

    name = "runway"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.AUDIO,
            Capability.NEGATIVE_PROMPT,
            Capability.SEED,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._base = ctx.base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"X-Runway-Version": self._ctx.options.get("api_version") or API_VERSION}
        if self._ctx.api_key:
            headers["Authorization"] = f"Bearer {self._ctx.api_key}"
        return headers

    # ------------------------------------------------------------------ submit

    def build_body(self, req: GenerationRequest, route: Route) -> tuple[str, JSON]:
        """The endpoint path and camelCase body for ``req`` (pure; no I/O)."""
        first, last = req.first_frame, req.last_frame
        model = route.image_model if first and route.image_model else route.model
        body: JSON = {"model": model}
        if req.prompt:
            body["promptText"] = req.prompt
        if first and last:
            body["promptImage"] = [
                {"uri": first, "position": "first"},
                {"uri": last, "position": "last"},
            ]
        elif first:
            body["promptImage"] = first
        elif last:
            body["promptImage"] = [{"uri": last, "position": "last"}]
        if req.reference_images:
            log.info("runway: reference images are not mapped; leaving them out")
        ratio = runway_ratio(req.aspect_ratio, req.resolution)
        if ratio:
            body["ratio"] = ratio
        elif req.aspect_ratio:
            log.info("runway: no pixel ratio for aspect %s; leaving ratio out", req.aspect_ratio)
        if req.duration_s is not None:
            body["duration"] = req.duration_s
        if req.seed is not None:
            body["seed"] = req.seed
        if req.negative_prompt:
            body["negativePrompt"] = req.negative_prompt
        if req.audio is not None:
            body["audio"] = req.audio
        deep_merge(body, route.params)
        merge_under(body, req.provider_options)
        path = "/v1/image_to_video" if (first or last) else "/v1/text_to_video"
        return path, body

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        """No idempotency key, reference field, list or callback: a lost submit is lost."""
        path, body = self.build_body(req, route)
        data, response = await request_json(
            self._ctx,
            "POST",
            self._base + path,
            json_body=body,
            headers=self._headers(),
            classify=_classify,
            submit=True,
        )
        request_id = response.headers.get("x-request-id")
        task_id = accepted_id(data, "id", request_id=request_id, what="task id")
        return UpstreamRef(id=task_id, request_id=request_id, state={"endpoint": path})

    # -------------------------------------------------------------------- poll

    async def check(self) -> bool:
        """``GET /v1/organization``: the key's organization and credit balance."""
        await request_json(
            self._ctx, "GET", f"{self._base}/v1/organization", headers=self._headers(), classify=_classify
        )
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        data, _ = await request_json(
            self._ctx,
            "GET",
            f"{self._base}/v1/tasks/{ref.id}",
            headers=self._headers(),
            classify=_classify,
        )
        return status_of(expect_dict(data), ref.request_id)

    async def cancel(self, ref: UpstreamRef) -> None:
        await request_json(
            self._ctx,
            "DELETE",
            f"{self._base}/v1/tasks/{ref.id}",
            headers=self._headers(),
            classify=_classify,
            allow_empty=True,
        )


def status_of(task: JSON, request_id: str | None = None) -> UpstreamStatus:
    """Normalise one task object from ``GET /v1/tasks/{id}``."""
    raw = task.get("status")
    if not isinstance(raw, str):
        raise UpstreamProtocolError("runway task has no status", request_id=request_id)
    state = state_for("runway", _STATES, raw, task.get("id") if isinstance(task.get("id"), str) else None)
    if state == "running":
        progress = task.get("progress")
        percent = None
        if isinstance(progress, int | float) and not isinstance(progress, bool):
            percent = max(0, min(100, round(float(progress) * 100)))
        return UpstreamStatus(state="running", progress=percent, raw_status=raw)
    if state == "succeeded":
        urls = task.get("output")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls) or not urls:
            raise UpstreamProtocolError("runway task SUCCEEDED without output URLs")
        outputs = tuple(UpstreamOutput(url=url, content_type="video/mp4") for url in urls)
        return UpstreamStatus(state="succeeded", progress=100, outputs=outputs, raw_status=raw)
    if state == "failed":
        return UpstreamStatus(state="failed", error=failure_error(task, request_id), raw_status=raw)
    return UpstreamStatus(state=state, raw_status=raw)
