"""ByteDance Seedance adapter for BytePlus ModelArk / Volcengine Ark (``/api/v3``).

Wire facts (specs/upstream-protocols.md §10, volcengine ark runtime SDK, mirrors of the
BytePlus docs):

- ``Authorization: Bearer <ARK_API_KEY>``; keys are region-bound (Seedance video is
  ``ap-southeast`` on BytePlus, ``cn-beijing`` on Volcengine).
- ``POST /contents/generations/tasks`` with ``model`` and a ``content`` array: one
  ``{"type": "text", "text": ...}`` item and ``{"type": "image_url", "image_url": {"url"},
  "role": "first_frame" | "last_frame" | "reference_image"}`` items. Generation settings
  are top-level body fields, as the current BytePlus SDK sends them: ``resolution``,
  ``ratio``, ``duration`` (integer seconds), ``seed``, ``generate_audio`` (2.x models),
  ``watermark``. (The older ``--resolution 720p`` prompt flags are not sent.) The
  answer is ``{"id"}``. There is no idempotency key and no client reference field;
  ``callback_url`` carries ``?job=<gateway job id>``.
- ``GET /contents/generations/tasks/{id}``: ``status`` is ``queued | running | succeeded |
  failed | cancelled | expired``; ``content.video_url`` lives 24 h; ``error`` is
  ``{"code", "message"}``.
- ``DELETE /contents/generations/tasks/{id}`` cancels a queued task (or deletes a
  finished one's record); a running task cannot be cancelled, so a 4xx there is logged.
- ``callback_url`` receives the task body on status changes, unsigned: only a hint.
- Errors are ``{"error": {"code", "message", "param", "type"}}``; ``*SensitiveContent
  Detected`` codes are content refusals; ``QuotaExceeded`` (429) is not retried.
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
    CallbackRequest,
    CallbackResult,
    Capability,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamContentPolicy,
    UpstreamError,
    UpstreamOutput,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
    state_for,
)
from vidgate.providers.http import (
    accepted_id,
    callback_url_for,
    deep_merge,
    dig,
    expect_dict,
    merge_under,
    request_json,
    unsigned_hint,
)

log = logging.getLogger(__name__)

PREFIX = "/api/v3"
TASKS = "/contents/generations/tasks"

State = Literal["queued", "running", "succeeded", "failed", "canceled"]
_STATES: Mapping[str, State] = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "canceled",
    "expired": "failed",
}

_ROLES: Mapping[str, str] = {
    "first_frame": "first_frame",
    "last_frame": "last_frame",
    "reference": "reference_image",
}

_AUTH_CODES = ("AuthenticationError", "AccessDenied", "ModelNotOpen", "QuotaExceeded")


def error_for(
    code: str | None,
    message: str,
    *,
    status: int | None = None,
    request_id: str | None = None,
) -> UpstreamError:
    """The error an Ark error ``code`` (with its HTTP status, when there is one) means."""
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id}
    code = code or ""
    if "SensitiveContentDetected" in code:
        return UpstreamContentPolicy(message, **kwargs)
    if code.startswith(_AUTH_CODES) or status in (401, 403):
        return UpstreamAuthError(message, **kwargs)
    if code.startswith(("RateLimitExceeded", "ServerOverloaded")) or status == 429:
        return UpstreamRateLimited(message, **kwargs)
    if code.startswith("InternalServiceError") or (status or 0) >= 500:
        return UpstreamUnavailable(message, **kwargs)
    return UpstreamRejected(message, **kwargs)


def _message(error: Any, fallback: str) -> tuple[str | None, str]:
    code = dig(error, "code")
    text = dig(error, "message")
    code = code if isinstance(code, str) and code else None
    if code and isinstance(text, str) and text:
        return code, f"{code}: {text}"
    return code, (text if isinstance(text, str) and text else code or fallback)


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    error = dig(body, "error")
    if not isinstance(error, dict) or status == 408:
        return None
    code, message = _message(error, f"HTTP {status}")
    quota = (code or "").startswith("QuotaExceeded")
    if (status == 429 and not quota) or status >= 500:
        return None  # the default mapping keeps Retry-After
    return error_for(code, message, status=status, request_id=request_id)


class ArkAdapter(AdapterBase):
    """Seedance content-generation tasks: submit, poll, cancel; unsigned callbacks as hints."""

    name = "ark"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.CALLBACK,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.AUDIO,
            Capability.SEED,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        base = ctx.base_url.rstrip("/")
        self._tasks = (base if base.endswith(PREFIX) else base + PREFIX) + TASKS

    def _headers(self) -> dict[str, str]:
        if self._ctx.api_key:
            return {"Authorization": f"Bearer {self._ctx.api_key}"}
        return {}

    def build_body(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt | None = None) -> JSON:
        """The create body for ``req`` (pure; no I/O)."""
        extras: JSON = merge_under(deep_merge({}, route.params), req.provider_options)
        model = route.image_model if req.first_frame and route.image_model else route.model
        text = req.prompt.strip()
        content: list[JSON] = [{"type": "text", "text": text}] if text else []
        for image in req.images:
            role = _ROLES.get(image.role)
            if role is None:
                log.info("ark: image role %r has no Seedance role; leaving it out", image.role)
                continue
            content.append({"type": "image_url", "image_url": {"url": image.url}, "role": role})
        body: JSON = {"model": model, "content": content}
        settings: dict[str, Any] = {
            "resolution": req.resolution.lower() if req.resolution else None,
            "ratio": req.aspect_ratio,
            "duration": req.duration_s,
            "seed": req.seed,
            "generate_audio": req.audio,
        }
        body.update({name: value for name, value in settings.items() if value is not None})
        callback = callback_url_for(self._ctx, attempt) if attempt else self._ctx.callback_url
        if callback:
            body["callback_url"] = callback
        return deep_merge(body, extras)

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        data, response = await request_json(
            self._ctx,
            "POST",
            self._tasks,
            json_body=self.build_body(req, route, attempt),
            headers=self._headers(),
            classify=_classify,
            submit=True,
        )
        request_id = response.headers.get("x-request-id")
        task_id = accepted_id(data, "id", request_id=request_id, what="task id")
        return UpstreamRef(id=task_id, request_id=request_id)

    async def check(self) -> bool:
        """One page of the task list, read with the key."""
        await request_json(
            self._ctx,
            "GET",
            self._tasks,
            params={"page_num": "1", "page_size": "1"},
            headers=self._headers(),
            classify=_classify,
        )
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        data, _ = await request_json(
            self._ctx, "GET", f"{self._tasks}/{ref.id}", headers=self._headers(), classify=_classify
        )
        return status_of(expect_dict(data), ref.request_id)

    async def cancel(self, ref: UpstreamRef) -> None:
        """Cancel a queued task; Ark refuses for a running one (logged, not raised)."""
        try:
            await request_json(
                self._ctx,
                "DELETE",
                f"{self._tasks}/{ref.id}",
                headers=self._headers(),
                classify=_classify,
                allow_empty=True,
            )
        except UpstreamRejected as exc:
            log.info("ark: task %s could not be cancelled: %s", ref.id, exc.message)

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """The task body is only a hint: unsigned, so we re-poll with our key."""
        return unsigned_hint(call, id_field="id", status_field="status")


def status_of(task: JSON, request_id: str | None = None) -> UpstreamStatus:
    """Normalise one task body (from a GET, or the same shape in a callback)."""
    raw = task.get("status")
    if not isinstance(raw, str):
        raise UpstreamProtocolError("ark task has no status", request_id=request_id)
    state = state_for("ark", _STATES, raw, task.get("id") if isinstance(task.get("id"), str) else None)
    if state == "succeeded":
        url = dig(task, "content", "video_url")
        if not isinstance(url, str) or not url:
            raise UpstreamProtocolError("ark task succeeded without content.video_url")
        video = UpstreamOutput(url=url, content_type="video/mp4")
        cost = usage.units(dig(task, "usage", "completion_tokens"), "tokens")
        return UpstreamStatus(
            state="succeeded", progress=100, outputs=(video,), raw_status=raw, reported_cost=cost
        )
    if raw == "expired":
        message = "the task was not run before its execution window expired"
        error: UpstreamError = UpstreamTimeout(message, request_id=request_id)
        return UpstreamStatus(state="failed", error=error, raw_status=raw)
    if state == "failed":
        code, message = _message(task.get("error"), "the task failed")
        policy = "SensitiveContentDetected" in (code or "")
        cls = UpstreamContentPolicy if policy else UpstreamRejected
        return UpstreamStatus(state="failed", error=cls(message, request_id=request_id), raw_status=raw)
    return UpstreamStatus(state=state, raw_status=raw)
