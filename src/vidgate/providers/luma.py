"""Luma Dream Machine adapter (``api.lumalabs.ai/dream-machine/v1``).

Wire facts (specs/upstream-protocols.md §8, lumaai SDK):

- ``Authorization: Bearer <key>``.
- ``POST /generations/video`` (what the current ``lumaai`` SDK's ``generations.create``
  calls) with ``model``, ``prompt``, ``aspect_ratio``, ``resolution`` (``540p|720p|1080p|4k``),
  ``duration`` as a string (``"5s"``), ``loop``, ``keyframes`` (``frame0`` = first
  frame, ``frame1`` = last frame, each ``{"type": "image", "url": ...}``) and
  ``callback_url``. The answer is a Generation object.
- ``GET /generations/{id}``: ``state`` is ``queued | dreaming | completed | failed``;
  ``assets.video`` is the MP4; ``failure_reason`` says why it failed.
- ``GET /generations?limit=&offset=`` lists the newest generations; each carries its
  ``request``, so ``find`` spots an earlier attempt by the ``?job=<gateway job id>``
  in its ``callback_url`` (no idempotency key or reference field exists).
- ``DELETE /generations/{id}`` deletes a generation. There is no separate cancel, so
  ``cancel`` deletes it (whether that stops the work upstream is UNCONFIRMED).
- Callbacks POST the Generation object when it becomes dreaming, completed or
  failed, unsigned: we only take them as a hint to poll now.

UNCONFIRMED: the error body (``{"detail": ...}``, as FastAPI writes it), the meaning
of 402 (taken as the operator's account being out of credits), and the wording of a
moderation failure (Luma has answered ``"Advanced moderation failed"``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from vidgate.domain.request import GenerationRequest
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
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
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

PREFIX = "/dream-machine/v1"
FIND_PAGE_SIZE = 100  # newest generations searched by find; a lost submit is minutes old

State = Literal["queued", "running", "succeeded", "failed", "canceled"]
_STATES: Mapping[str, State] = {
    "queued": "queued",
    "dreaming": "running",
    "completed": "succeeded",
    "failed": "failed",
}

# Phrases Luma uses for a moderation refusal (observed, not documented).
_MODERATION = ("moderation failed", "content policy", "prompt not allowed")


def is_moderation(reason: str) -> bool:
    text = reason.lower()
    return any(phrase in text for phrase in _MODERATION)


def _detail(body: Any) -> str | None:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:  # FastAPI validation errors
        return "; ".join(str(dig(item, "msg") or item) for item in detail[:5])
    return None


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    detail = _detail(body)
    if status == 402:
        message = detail or "the Luma account has no credits left"
        return UpstreamAuthError(message, status_code=status, request_id=request_id)
    if detail and status in (400, 422):
        cls = UpstreamContentPolicy if is_moderation(detail) else UpstreamRejected
        return cls(detail, status_code=status, request_id=request_id)
    return None


class LumaAdapter(AdapterBase):
    """Luma's generations API: submit, poll, delete; unsigned callbacks as poll hints."""

    name = "luma"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.CALLBACK,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.FIND,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        base = ctx.base_url.rstrip("/")
        self._base = base if base.endswith(PREFIX) else base + PREFIX

    def _headers(self) -> dict[str, str]:
        if self._ctx.api_key:
            return {"Authorization": f"Bearer {self._ctx.api_key}"}
        return {}

    def build_body(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt | None = None) -> JSON:
        """The create body for ``req`` (pure; no I/O)."""
        first, last = req.first_frame, req.last_frame
        model = route.image_model if first and route.image_model else route.model
        body: JSON = {"model": model}
        if req.prompt:
            body["prompt"] = req.prompt
        if req.aspect_ratio:
            body["aspect_ratio"] = req.aspect_ratio
        if req.resolution:
            body["resolution"] = req.resolution.lower()
        if req.duration_s is not None:
            body["duration"] = f"{req.duration_s}s"
        keyframes: JSON = {}
        if first:
            keyframes["frame0"] = {"type": "image", "url": first}
        if last:
            keyframes["frame1"] = {"type": "image", "url": last}
        if keyframes:
            body["keyframes"] = keyframes
        if req.reference_images:
            log.info("luma: reference images are not mapped; leaving them out")
        callback = callback_url_for(self._ctx, attempt) if attempt else self._ctx.callback_url
        if callback:
            body["callback_url"] = callback
        deep_merge(body, route.params)
        merge_under(body, req.provider_options)
        return body

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        data, response = await request_json(
            self._ctx,
            "POST",
            f"{self._base}/generations/video",
            json_body=self.build_body(req, route, attempt),
            headers=self._headers(),
            classify=_classify,
            submit=True,
        )
        request_id = response.headers.get("x-request-id")
        generation_id = accepted_id(data, "id", request_id=request_id, what="generation id")
        return UpstreamRef(id=generation_id, request_id=request_id)

    async def find(self, attempt: SubmitAttempt, route: Route) -> UpstreamRef | None:
        """An earlier attempt's generation among the newest, by the job in its callback URL.

        Only possible when callbacks are on (the callback URL is the only reference)."""
        marker = callback_url_for(self._ctx, attempt)
        if marker is None:
            return None
        data, response = await request_json(
            self._ctx,
            "GET",
            f"{self._base}/generations",
            params={"limit": str(FIND_PAGE_SIZE), "offset": "0"},
            headers=self._headers(),
            classify=_classify,
        )
        items = dig(data, "generations")
        for generation in items if isinstance(items, list) else ():
            if dig(generation, "request", "callback_url") == marker and isinstance(
                dig(generation, "id"), str
            ):
                return UpstreamRef(id=generation["id"], request_id=response.headers.get("x-request-id"))
        return None

    async def check(self) -> bool:
        """The newest generation, listed with our key."""
        await request_json(
            self._ctx,
            "GET",
            f"{self._base}/generations",
            params={"limit": "1", "offset": "0"},
            headers=self._headers(),
            classify=_classify,
        )
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        data, _ = await request_json(
            self._ctx,
            "GET",
            f"{self._base}/generations/{ref.id}",
            headers=self._headers(),
            classify=_classify,
        )
        return status_of(expect_dict(data), ref.request_id)

    async def cancel(self, ref: UpstreamRef) -> None:
        await request_json(
            self._ctx,
            "DELETE",
            f"{self._base}/generations/{ref.id}",
            headers=self._headers(),
            classify=_classify,
            allow_empty=True,
        )

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """A Generation object is only a hint: unsigned, so we re-poll with our key."""
        return unsigned_hint(call, id_field="id", status_field="state")


def status_of(generation: JSON, request_id: str | None = None) -> UpstreamStatus:
    """Normalise one Generation object."""
    raw = generation.get("state")
    if not isinstance(raw, str):
        raise UpstreamProtocolError("luma generation has no state", request_id=request_id)
    state = state_for(
        "luma", _STATES, raw, generation.get("id") if isinstance(generation.get("id"), str) else None
    )
    if state == "succeeded":
        url = dig(generation, "assets", "video")
        if not isinstance(url, str) or not url:
            raise UpstreamProtocolError("luma generation completed without assets.video")
        output = UpstreamOutput(url=url, content_type="video/mp4")
        return UpstreamStatus(state="succeeded", progress=100, outputs=(output,), raw_status=raw)
    if state == "failed":
        reason = generation.get("failure_reason")
        message = reason if isinstance(reason, str) and reason else "the generation failed"
        cls = UpstreamContentPolicy if is_moderation(message) else UpstreamRejected
        return UpstreamStatus(state="failed", error=cls(message, request_id=request_id), raw_status=raw)
    return UpstreamStatus(state=state, raw_status=raw)
