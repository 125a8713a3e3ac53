"""xAI Grok Imagine video adapter (``api.x.ai/v1/videos``).

Wire facts (specs/upstream-protocols.md §11a, docs.x.ai video generation, mirrors):

- ``Authorization: Bearer <XAI_API_KEY>``. A wrong key is answered **400** with
  ``{"code": ..., "error": "Incorrect API key provided: ..."}``, so that message means
  an auth failure here, whatever the status.
- ``POST /v1/videos/generations`` with ``model``, ``prompt`` (<= 4096 chars), ``duration``
  (1-15 s), ``aspect_ratio``, ``resolution`` (``480p|720p``, and ``1080p`` on
  ``grok-imagine-video-1.5``); image-to-video adds an
  ``image`` object with the URL or data URI; ``reference_images`` (a list of ``{"url"}``)
  cannot be combined with ``image``. The answer is ``{"request_id"}``.
- ``GET /v1/videos/{request_id}``: ``{"status": "pending"}`` while it works, then
  ``{"status": "done", "video": {"url", "duration", "respect_moderation"}, ...}`` or
  ``{"status": "failed", "error": {"code", "message"}}``.
- No cancel and no callbacks are documented: this adapter only polls.

UNCONFIRMED, and built to tolerate being wrong: the ``image`` key shape
(``{"url": ...}``); ``expired`` (taken as the result being gone) and the third-party
``queued`` / ``processing`` words; an optional ``progress`` percentage; that
``respect_moderation: false`` means the video was withheld or altered by moderation
(reported as a content-policy failure).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from vidgate.domain.request import GenerationRequest
from vidgate.providers import usage
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    JSON,
    Capability,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamContentPolicy,
    UpstreamError,
    UpstreamOutput,
    UpstreamOutputExpired,
    UpstreamProtocolError,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    state_for,
)
from vidgate.providers.http import accepted_id, deep_merge, dig, expect_dict, merge_under, request_json

log = logging.getLogger(__name__)

State = Literal["queued", "running", "succeeded", "failed", "canceled"]
_STATES: Mapping[str, State] = {
    "pending": "running",  # xAI does not tell queued from running
    "queued": "queued",  # third-party docs only
    "processing": "running",  # third-party docs only
    "done": "succeeded",
    "failed": "failed",
    "expired": "failed",
}


def _mentions_moderation(*texts: Any) -> bool:
    return any(isinstance(t, str) and "moderat" in t.lower() for t in texts)


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(error, str) or not error:
        return None
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id}
    if "api key" in error.lower() and status in (400, 401, 403):
        return UpstreamAuthError(error, **kwargs)
    if status in (400, 422) and _mentions_moderation(error, code):
        return UpstreamContentPolicy(error, **kwargs)
    return None


class XaiAdapter(AdapterBase):
    """Grok Imagine deferred video requests: submit, then poll by request id."""

    name = "xai"
    capabilities = frozenset({Capability.IMAGE_INPUT})

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        base = ctx.base_url.rstrip("/")
        self._videos = (base[: -len("/v1")] if base.endswith("/v1") else base) + "/v1/videos"

    def _headers(self) -> dict[str, str]:
        if self._ctx.api_key:
            return {"Authorization": f"Bearer {self._ctx.api_key}"}
        return {}

    def build_body(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt | None = None) -> JSON:
        """The create body for ``req`` (pure; no I/O)."""
        first = req.first_frame
        model = route.image_model if first and route.image_model else route.model
        body: JSON = {"model": model, "prompt": req.prompt}
        if attempt is not None:
            body["user"] = attempt.job_id  # xAI's only client reference (nothing lists by it)
        if req.duration_s is not None:
            body["duration"] = req.duration_s
        if req.aspect_ratio:
            body["aspect_ratio"] = req.aspect_ratio
        if req.resolution:
            body["resolution"] = req.resolution.lower()
        references = req.reference_images
        if first:
            body["image"] = {"url": first}
            if references:
                log.info("xai: reference images cannot go with an image; leaving them out")
        elif references:
            body["reference_images"] = [{"url": url} for url in references]
        if req.last_frame:
            log.info("xai: Grok Imagine takes no last frame; leaving it out")
        deep_merge(body, route.params)
        merge_under(body, req.provider_options)
        return body

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        data, _ = await request_json(
            self._ctx,
            "POST",
            f"{self._videos}/generations",
            json_body=self.build_body(req, route, attempt),
            headers=self._headers(),
            classify=_classify,
            submit=True,
        )
        request_id = accepted_id(data, "request_id", what="request_id")
        return UpstreamRef(id=request_id, request_id=request_id)

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        data, _ = await request_json(
            self._ctx,
            "GET",
            f"{self._videos}/{ref.id}",
            headers=self._headers(),
            classify=_classify,
        )
        return status_of(expect_dict(data), ref.id)


def _progress(answer: JSON) -> int | None:
    value = answer.get("progress")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
        return round(value)
    return None


def status_of(answer: JSON, request_id: str | None = None) -> UpstreamStatus:
    """Normalise one ``GET /v1/videos/{request_id}`` answer."""
    raw = answer.get("status")
    if not isinstance(raw, str):
        raise UpstreamProtocolError("xai answer has no status", request_id=request_id)
    state = state_for("xai", _STATES, raw, request_id)
    if state in ("queued", "running"):
        return UpstreamStatus(state=state, progress=_progress(answer), raw_status=raw)
    if raw == "expired":
        error: UpstreamError = UpstreamOutputExpired(
            "xai no longer holds this video request (expired)", request_id=request_id
        )
        return UpstreamStatus(state="failed", error=error, raw_status=raw)
    if state == "failed":
        code, text = dig(answer, "error", "code"), dig(answer, "error", "message")
        message = text if isinstance(text, str) and text else "the video generation failed"
        if isinstance(code, str) and code:
            message = f"{code}: {message}"
        cls = UpstreamContentPolicy if _mentions_moderation(code, text) else UpstreamRejected
        return UpstreamStatus(state="failed", error=cls(message, request_id=request_id), raw_status=raw)
    if dig(answer, "video", "respect_moderation") is False:
        error = UpstreamContentPolicy(
            "xai withheld the video: it did not pass content moderation", request_id=request_id
        )
        return UpstreamStatus(state="failed", error=error, raw_status=raw)
    url = dig(answer, "video", "url")
    if not isinstance(url, str) or not url:
        raise UpstreamProtocolError("xai video is done without video.url", request_id=request_id)
    video = UpstreamOutput(url=url, content_type="video/mp4")
    cost = usage.usd_ticks(dig(answer, "usage", "cost_in_usd_ticks"))
    return UpstreamStatus(
        state="succeeded", progress=100, outputs=(video,), raw_status=raw, reported_cost=cost
    )
