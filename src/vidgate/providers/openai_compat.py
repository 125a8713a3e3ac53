"""OpenAI Videos API adapter, for OpenAI itself or any OpenAI-compatible upstream.

Wire facts (specs/upstream-protocols.md §3, openai-python SDK and OpenAI's API reference):

- ``Authorization: Bearer <key>``; ``OpenAI-Organization`` / ``OpenAI-Project`` when the
  ``organization`` / ``project`` options are set. The base URL may end in ``/v1`` or not.
- ``POST /v1/videos`` with ``prompt``, ``model``, ``seconds`` (a *string*), ``size``
  (``"1280x720"`` style) and ``input_reference`` ``{"image_url": <https or data: URL>}``.
  The current SDK always sends ``multipart/form-data``, and so does this adapter: plain
  form fields, the reference as ``input_reference[image_url]`` (the SDK's bracket form
  for a nested object). No file is ever uploaded.
- No idempotency key, no client reference on a Video: a lost submit cannot be found.
- The Video object: ``status`` ``queued`` / ``in_progress`` / ``completed`` / ``failed``,
  ``progress`` 0..100, ``error`` ``{"code","message"}``, ``expires_at`` (unix seconds)
  after which the assets are gone.
- ``GET /v1/videos/{id}``; ``GET /v1/videos/{id}/content?variant=video`` returns the
  MP4 and needs the same Bearer header (so the output carries it).
- ``DELETE /v1/videos/{id}`` removes the video; it is this adapter's cancel.
- Errors: ``{"error": {"message","type","param","code"}}``. A moderation refusal's
  code is UNCONFIRMED; ``moderation_blocked`` and ``content_policy_violation`` are read
  as content policy.
- Webhooks are configured per project (not per request) and signed with Standard
  Webhooks; the event envelope ``{"type": "video.completed", "data": {"id"}}`` is
  UNCONFIRMED. With ``ctx.options["webhook_secret"]`` a signed event is a trusted
  "poll now"; it never carries a status, so no callback capability is declared.

The Sora 2 API was shut down on 2026-09-24; this adapter stays for compatible upstreams.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

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
from vidgate.providers.http import (
    acceptance,
    accepted_id,
    deep_merge,
    dig,
    expect_dict,
    merge_under,
    request_id_of,
    request_json,
)

log = logging.getLogger(__name__)

MODERATION_CODES = frozenset({"moderation_blocked", "content_policy_violation"})

# (resolution, aspect ratio) -> Sora ``size``.
_SIZES: Mapping[tuple[str, str], str] = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1920x1080",
    ("1080p", "9:16"): "1080x1920",
    ("1024p", "16:9"): "1792x1024",
    ("1024p", "9:16"): "1024x1792",
}


def size_for(resolution: str | None, aspect_ratio: str | None) -> str | None:
    """Sora's ``size`` for a catalog resolution and aspect ratio; None when neither is set."""
    if resolution and "x" in resolution:
        return resolution  # already ``WxH``
    if not resolution and not aspect_ratio:
        return None
    size = _SIZES.get(((resolution or "720p").lower(), aspect_ratio or "16:9"))
    if size is None:
        raise UpstreamRejected(f"no OpenAI video size for {resolution} at {aspect_ratio}")
    return size


def _error(error: Any, fallback: str, status: int | None = None) -> UpstreamRejected:
    message = dig(error, "message")
    text = message if isinstance(message, str) and message else fallback
    code = dig(error, "code")
    cls = UpstreamContentPolicy if code in MODERATION_CODES else UpstreamRejected
    return cls(f"{text} ({code})" if isinstance(code, str) and code else text, status_code=status)


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    """Content-policy refusals come as 400-class errors with a moderation code."""
    error = dig(body, "error")
    if 400 <= status < 500 and dig(error, "code") in MODERATION_CODES:
        refused = _error(error, "the request was refused by moderation", status)
        refused.request_id = request_id
        return refused
    return None


def form_fields(body: Mapping[str, Any], prefix: str = "") -> list[tuple[str, tuple[None, str]]]:
    """``body`` as multipart form fields the way the openai SDK flattens it: nested
    objects as ``key[sub]``, scalars as text (booleans ``true``/``false``)."""
    fields: list[tuple[str, tuple[None, str]]] = []
    for key, value in body.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, Mapping):
            fields.extend(form_fields(value, name))
        elif isinstance(value, bool):
            fields.append((name, (None, "true" if value else "false")))
        elif value is not None:
            fields.append((name, (None, value if isinstance(value, str) else json.dumps(value))))
    return fields


class OpenAICompatAdapter(AdapterBase):
    """``/v1/videos``: create, poll, download with the Bearer header, delete."""

    name = "openai"
    capabilities = frozenset({Capability.CANCEL, Capability.IMAGE_INPUT})

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        base = ctx.base_url.rstrip("/")
        self._api = base if base.endswith("/v1") else f"{base}/v1"
        self._webhook: Webhook | None = None
        if secret := ctx.options.get("webhook_secret"):
            try:
                self._webhook = Webhook(secret)
            except (ValueError, RuntimeError, EmptyWebhookSecretError):
                log.warning("openai: the webhook_secret option is not a usable secret")

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._ctx.api_key}"} if self._ctx.api_key else {}
        if organization := self._ctx.options.get("organization"):
            headers["OpenAI-Organization"] = organization
        if project := self._ctx.options.get("project"):
            headers["OpenAI-Project"] = project
        return headers

    # ------------------------------------------------------------------ submit

    def build_body(self, req: GenerationRequest, route: Route) -> JSON:
        """The create body: request fields, then route params, then provider_options."""
        model = route.image_model if req.first_frame and route.image_model else route.model
        body: JSON = {"prompt": req.prompt, "model": model}
        if req.duration_s is not None:
            body["seconds"] = str(req.duration_s)
        if size := size_for(req.resolution, req.aspect_ratio):
            body["size"] = size
        if req.first_frame:
            body["input_reference"] = {"image_url": req.first_frame}
        deep_merge(body, route.params)
        return merge_under(body, req.provider_options)

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        answer, response = await request_json(
            self._ctx,
            "POST",
            f"{self._api}/videos",
            files=form_fields(self.build_body(req, route)),
            headers=self._headers(),
            classify=_classify,
            submit=True,
        )
        request_id = request_id_of(response)
        video_id = accepted_id(answer, "id", request_id=request_id, what="Video id")
        with acceptance():
            if not isinstance(dig(answer, "status"), str):
                raise UpstreamProtocolError("the answer is not a Video object", request_id=request_id)
        return UpstreamRef(id=video_id, request_id=request_id or video_id, state={})

    # -------------------------------------------------------------------- poll

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        answer, response = await request_json(
            self._ctx,
            "GET",
            f"{self._api}/videos/{ref.id}",
            headers=self._headers(),
            classify=_classify,
        )
        video = expect_dict(answer, request_id_of(response))
        word = video.get("status")
        if not isinstance(word, str):
            raise UpstreamProtocolError("the Video object has no status", request_id=ref.id)
        progress = video.get("progress")
        percent = max(0, min(100, int(progress))) if isinstance(progress, int | float) else None
        if word == "queued":
            return UpstreamStatus(state="queued", progress=percent, raw_status=word)
        if word == "in_progress":
            return UpstreamStatus(state="running", progress=percent, raw_status=word)
        if word == "failed":
            error = _error(video.get("error"), "the video generation failed")
            error.request_id = ref.id
            return UpstreamStatus(state="failed", error=error, raw_status=word)
        if word == "completed":
            return self._completed(ref, video)
        return UpstreamStatus(state=state_for("openai", {}, word, ref.id), progress=percent, raw_status=word)

    def _completed(self, ref: UpstreamRef, video: JSON) -> UpstreamStatus:
        expires_at = video.get("expires_at")
        if isinstance(expires_at, int | float) and expires_at <= time.time():
            gone = UpstreamOutputExpired("the video's assets have expired", request_id=ref.id)
            return UpstreamStatus(state="failed", error=gone, raw_status="completed")
        output = UpstreamOutput(
            url=f"{self._api}/videos/{ref.id}/content?variant=video",
            headers={**self._headers(), "Accept": "application/binary"},
            content_type="video/mp4",
        )
        return UpstreamStatus(state="succeeded", progress=100, outputs=(output,), raw_status="completed")

    async def cancel(self, ref: UpstreamRef) -> None:
        try:
            await request_json(
                self._ctx,
                "DELETE",
                f"{self._api}/videos/{ref.id}",
                headers=self._headers(),
                classify=_classify,
                allow_empty=True,
            )
        except UpstreamRejected as exc:  # already gone
            log.info("openai: video %s could not be deleted: %s", ref.id, exc.message)

    # --------------------------------------------------------------- callbacks

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """A project webhook event ``video.*``: at best a trusted prompt to poll now."""
        try:
            event = json.loads(call.body)
        except ValueError:
            return None
        video_id = dig(event, "data", "id")
        kind = dig(event, "type")
        if not isinstance(video_id, str) or not isinstance(kind, str):
            return None
        if not kind.startswith("video."):
            return None
        headers = {k.lower(): v for k, v in call.headers.items()}
        if self._webhook is None or "webhook-signature" not in headers:
            return CallbackResult(upstream_id=video_id, verified=False)
        try:
            self._webhook.verify(call.body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            log.warning("openai: rejected a webhook for %s: %s", video_id, exc)
            return None
        return CallbackResult(upstream_id=video_id, verified=True)
