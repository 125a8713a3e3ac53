"""fal.ai queue API adapter (``queue.fal.run``).

Wire facts (specs/upstream-protocols.md §1, fal_client SDK and docs.fal.ai):

- ``Authorization: Key <FAL_KEY>`` (the key may be ``key_id:key_secret``).
- ``POST {base}/{endpoint_id}[?fal_webhook=<url>]``; the body is the model input itself.
  The answer carries ``request_id`` and ``status_url`` / ``response_url`` / ``cancel_url``,
  which use only the app id (``owner/alias``, one more segment for ``workflows/`` and
  ``comfy/``): the endpoint's sub-path is dropped.
- ``GET {status_url}?logs=1``: ``IN_QUEUE`` (``queue_position``) / ``IN_PROGRESS`` /
  ``COMPLETED`` (failed when ``error`` is set). ``FAILED`` / ``CANCELED`` are only seen
  in a third-party schema and mapped defensively. Any 2xx is accepted.
- ``GET {response_url}``: the model output, the video at ``video.url`` (or
  ``videos[0].url``); a failed request answers non-2xx with ``{"detail": ...}`` where
  ``detail`` is a string or a list of ``{"loc","msg","type"}``; ``type ==
  "content_policy_violation"`` is fal's content-moderation error type (docs.fal.ai/errors).
  The error type also comes in the ``x-fal-error-type`` response header (the SDK's
  ``_raise_for_status`` reads it); it is honoured when the body has none, and types
  that name fal's own or a downstream outage are retryable.
- No idempotency key and no client reference field: the webhook URL carries
  ``?job=<gateway job id>``. A lost submit cannot be looked up, but its signed webhook
  names the ``request_id``: ``ref_from_callback`` makes it pollable (the queue URLs
  follow from the endpoint id and the request id), so the job is adopted instead of
  submitted again.
- ``PUT {cancel_url}`` stops queued requests only (400 ``ALREADY_COMPLETED`` afterwards).
- Webhooks are signed with Ed25519: the message is
  ``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(body)}"`` from the
  ``X-Fal-Webhook-*`` headers, the signature is hex, the public keys are an OKP JWKS.
  Timestamps more than 300 s away are refused.

Options (``ctx.options``): ``jwks`` (the JWKS document inline, JSON) or ``jwks_url``.
Without either, the JWKS is fal's own for the real queue host and
``{base_url}/.well-known/jwks.json`` for any other base URL (a fake or a proxy).
``parse_callback`` is synchronous, so keys are fetched ahead of time (at submit and
poll when callbacks are on, or by ``refresh_keys``) through ``ctx.http`` and cached
on the adapter for 24 h; a callback that arrives before any key is known is only a
hint to poll.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
    UpstreamProtocolError,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamUnavailable,
    state_for,
)
from vidgate.providers.fal_profiles import profile_for, renamed
from vidgate.providers.http import (
    accepted_id,
    callback_url_for,
    deep_merge,
    dig,
    expect_dict,
    merge_under,
    request_id_of,
    request_json,
)

log = logging.getLogger(__name__)

FAL_QUEUE_HOST = "queue.fal.run"
FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
JWKS_TTL_S = 24 * 3600.0
SIGNATURE_TOLERANCE_S = 300
CONTENT_POLICY_TYPE = "content_policy_violation"
_NAMESPACES = ("workflows", "comfy")

# x-fal-error-type values that name an outage rather than a bad request (docs.fal.ai/errors).
RETRYABLE_TYPES = frozenset(
    {
        "internal_server_error",
        "downstream_service_error",
        "downstream_service_unavailable",
        "generation_timeout",
    }
)


def app_id(endpoint: str) -> str:
    """``owner/alias`` (plus the namespace segment) of an endpoint id."""
    parts = [p for p in endpoint.split("/") if p]
    keep = 3 if parts and parts[0] in _NAMESPACES else 2
    if len(parts) < keep:
        raise UpstreamRejected(f"not a fal endpoint id: {endpoint!r}")
    return "/".join(parts[:keep])


def _detail_error(
    body: Any, fallback: str, status: int | None = None, header_type: str | None = None
) -> UpstreamRejected:
    """The rejection a fal error body describes (``detail`` string or pydantic list)."""
    detail, kind = dig(body, "detail"), dig(body, "error_type") or header_type
    message = fallback
    if isinstance(detail, str) and detail:
        message = detail
    elif isinstance(detail, list) and detail:
        messages = [str(d.get("msg") or d) if isinstance(d, dict) else str(d) for d in detail]
        message = "; ".join(messages[:5])
        types = {d.get("type") for d in detail if isinstance(d, dict)}
        kind = CONTENT_POLICY_TYPE if CONTENT_POLICY_TYPE in types else kind
    cls = UpstreamContentPolicy if kind == CONTENT_POLICY_TYPE else UpstreamRejected
    return cls(message, status_code=status)


def _classify(response: httpx.Response, body: Any, request_id: str | None) -> UpstreamError | None:
    """Keep fal's reason and error type (body ``error_type`` or ``x-fal-error-type``)."""
    status = response.status_code
    header_type = response.headers.get("x-fal-error-type") or None
    kind = dig(body, "error_type") or header_type
    if kind in RETRYABLE_TYPES and status not in (401, 403, 429):
        message = _detail_error(body, f"fal answered HTTP {status} ({kind})").message
        return UpstreamUnavailable(message, status_code=status, request_id=request_id)
    if status in (401, 403, 408, 429) or status >= 500:
        return None
    if not isinstance(body, dict) and not header_type:
        return None
    error = _detail_error(body, f"fal answered HTTP {status}", status, header_type)
    error.request_id = request_id
    return error


def parse_jwks(document: Any) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of a JWKS document; other keys and bad entries are skipped."""
    keys: list[Ed25519PublicKey] = []
    entries = document.get("keys") if isinstance(document, dict) else None
    for jwk in entries if isinstance(entries, list) else []:
        x = dig(jwk, "x")
        if dig(jwk, "kty") != "OKP" or dig(jwk, "crv") != "Ed25519" or not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            log.warning("fal JWKS: skipping a malformed Ed25519 key")
    return tuple(keys)


def verify_signature(
    headers: Mapping[str, str], body: bytes, keys: tuple[Ed25519PublicKey, ...], now: float
) -> bool:
    """Check fal's Ed25519 webhook signature; ``headers`` have lower-case names."""
    try:
        request_id = headers["x-fal-webhook-request-id"]
        user_id = headers["x-fal-webhook-user-id"]
        timestamp = headers["x-fal-webhook-timestamp"]
        signature = bytes.fromhex(headers["x-fal-webhook-signature"])
        if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_S:
            return False
    except (KeyError, ValueError):
        return False
    digest = hashlib.sha256(body).hexdigest()
    message = f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def _video_output(result: Any) -> UpstreamOutput | None:
    video = dig(result, "video")
    if not isinstance(dig(video, "url"), str):
        video = dig(result, "videos", 0)
    url = dig(video, "url")
    if not isinstance(url, str) or not url:
        return None
    content_type = dig(video, "content_type")
    return UpstreamOutput(url=url, content_type=content_type if isinstance(content_type, str) else None)


class FalAdapter(AdapterBase):
    """fal's queue: submit to ``{base}/{endpoint}``, poll the status URL, fetch the result."""

    name = "fal"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.CALLBACK,
            Capability.SIGNED_CALLBACK,
            Capability.IMAGE_INPUT,
            Capability.AUDIO,
            Capability.NEGATIVE_PROMPT,
            Capability.SEED,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._base = ctx.base_url.rstrip("/")
        self._inline_keys: tuple[Ed25519PublicKey, ...] = ()
        self._fetched: tuple[float, tuple[Ed25519PublicKey, ...]] | None = None  # (at, keys)
        if inline := ctx.options.get("jwks"):
            try:
                self._inline_keys = parse_jwks(json.loads(inline))
            except ValueError:
                log.warning("fal: the jwks option is not JSON; ignoring it")
        host = urlsplit(self._base).hostname or ""
        default_jwks = FAL_JWKS_URL if host == FAL_QUEUE_HOST else f"{self._base}/.well-known/jwks.json"
        self.jwks_url = ctx.options.get("jwks_url") or default_jwks

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._ctx.api_key}"} if self._ctx.api_key else {}

    # ------------------------------------------------------------------ submit

    def build_input(self, req: GenerationRequest, endpoint: str, route: Route) -> JSON:
        """The model input for ``endpoint``: request fields it takes, then params, then options."""
        profile = profile_for(endpoint)
        body: JSON = {"prompt": req.prompt}
        if req.negative_prompt and profile.negative_prompt:
            body["negative_prompt"] = req.negative_prompt
        if req.duration_s is not None and profile.duration is not None:
            body["duration"] = profile.duration(req.duration_s)
        if req.aspect_ratio and profile.aspect_ratio:
            body["aspect_ratio"] = profile.aspect_ratio_names.get(req.aspect_ratio, req.aspect_ratio)
        if req.resolution and profile.resolution:
            body["resolution"] = req.resolution
        if req.seed is not None and profile.seed:
            body["seed"] = req.seed
        if req.audio is not None and profile.audio:
            body[profile.audio_field] = req.audio
        if req.first_frame:
            body[profile.image_field] = req.first_frame
        deep_merge(body, route.params)
        return merge_under(body, renamed(req.provider_options, profile.url_option_names))

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        endpoint = (route.image_model if req.first_frame and route.image_model else route.model).strip("/")
        application = app_id(endpoint)
        webhook = callback_url_for(self._ctx, attempt)
        params = {"fal_webhook": webhook} if webhook else None
        if webhook:
            await self.refresh_keys()
        body, response = await request_json(
            self._ctx,
            "POST",
            f"{self._base}/{endpoint}",
            json_body=self.build_input(req, endpoint, route),
            headers=self._headers(),
            params=params,
            classify_response=_classify,
            submit=True,
        )
        request_id = accepted_id(body, "request_id", request_id=request_id_of(response), what="request_id")
        answer = expect_dict(body)
        built = f"{self._base}/{application}/requests/{request_id}"
        state = {
            "endpoint": endpoint,
            "status_url": self._same_origin(answer.get("status_url"), f"{built}/status"),
            "response_url": self._same_origin(answer.get("response_url"), built),
            "cancel_url": self._same_origin(answer.get("cancel_url"), f"{built}/cancel"),
        }
        gateway_id = answer.get("gateway_request_id")
        return UpstreamRef(
            id=request_id,
            request_id=gateway_id if isinstance(gateway_id, str) and gateway_id else request_id,
            state=state,
        )

    def ref_from_callback(self, upstream_id: str, route: Route) -> UpstreamRef | None:
        """The queue URLs of a request known from its signed webhook (the submit answer was lost)."""
        endpoint = route.model.strip("/")
        try:
            built = f"{self._base}/{app_id(endpoint)}/requests/{upstream_id}"
        except UpstreamRejected:
            return None
        state = {
            "endpoint": endpoint,
            "status_url": f"{built}/status",
            "response_url": built,
            "cancel_url": f"{built}/cancel",
        }
        return UpstreamRef(id=upstream_id, request_id=upstream_id, state=state)

    def _same_origin(self, url: Any, fallback: str) -> str:
        """Use fal's URL only when it is on our base URL's origin (the key goes with it)."""
        if not isinstance(url, str):
            return fallback
        ours, theirs = urlsplit(self._base), urlsplit(url)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            log.warning("fal: ignoring a URL on another origin: %s", url)
            return fallback
        return url

    # -------------------------------------------------------------------- poll

    def _url(self, ref: UpstreamRef, key: str, suffix: str) -> str:
        url = ref.state.get(key)
        if isinstance(url, str) and url:
            return url
        endpoint = str(ref.state.get("endpoint") or "")
        return f"{self._base}/{app_id(endpoint)}/requests/{ref.id}{suffix}"

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        if self._ctx.callback_url and self._keys_stale():
            await self.refresh_keys()
        body, response = await request_json(
            self._ctx,
            "GET",
            self._url(ref, "status_url", "/status"),
            headers=self._headers(),
            params={"logs": "1"},
            classify_response=_classify,
        )
        status = expect_dict(body, request_id_of(response))
        word = status.get("status")
        if not isinstance(word, str):
            raise UpstreamProtocolError("fal's status answer has no status", request_id=ref.id)
        if word == "IN_QUEUE":
            position = status.get("queue_position")
            return UpstreamStatus(
                state="queued",
                queue_position=position if isinstance(position, int) else None,
                raw_status=word,
            )
        if word == "IN_PROGRESS":
            return UpstreamStatus(state="running", raw_status=word)
        if word == "COMPLETED" and not status.get("error"):
            return await self._result(ref)
        if word in ("COMPLETED", "FAILED"):
            error = _detail_error(
                {"detail": status.get("error"), "error_type": status.get("error_type")},
                "fal reported the request as failed",
            )
            error.request_id = ref.id
            return UpstreamStatus(state="failed", error=error, raw_status=word)
        if word in ("CANCELED", "CANCELLED"):
            return UpstreamStatus(state="canceled", raw_status=word)
        return UpstreamStatus(state=state_for("fal", {}, word, ref.id), raw_status=word)

    async def _result(self, ref: UpstreamRef) -> UpstreamStatus:
        try:
            body, _ = await request_json(
                self._ctx,
                "GET",
                self._url(ref, "response_url", ""),
                headers=self._headers(),
                classify_response=_classify,
            )
        except UpstreamRejected as exc:  # a non-2xx result is the request's failure
            exc.request_id = exc.request_id or ref.id
            return UpstreamStatus(state="failed", error=exc, raw_status="COMPLETED")
        output = _video_output(body)
        if output is None:
            raise UpstreamProtocolError("fal's result has no video URL", request_id=ref.id)
        return UpstreamStatus(state="succeeded", progress=100, outputs=(output,), raw_status="COMPLETED")

    # ------------------------------------------------------------------ cancel

    async def cancel(self, ref: UpstreamRef) -> None:
        try:
            await request_json(
                self._ctx,
                "PUT",
                self._url(ref, "cancel_url", "/cancel"),
                headers=self._headers(),
                classify_response=_classify,
                allow_empty=True,
            )
        except UpstreamRejected as exc:  # 400 ALREADY_COMPLETED: fal only cancels queued work
            log.info("fal: request %s could not be cancelled: %s", ref.id, exc.message)

    # --------------------------------------------------------------- callbacks

    def _keys_stale(self) -> bool:
        if self._inline_keys:
            return False
        return self._fetched is None or time.time() - self._fetched[0] > JWKS_TTL_S

    async def refresh_keys(self, *, force: bool = False) -> bool:
        """Fetch the JWKS (no credentials) unless cached; True when any keys are known."""
        if not force and not self._keys_stale():
            return True
        try:
            response = await self._ctx.http.get(self.jwks_url, timeout=self._ctx.timeout_s)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fal: could not fetch the webhook JWKS from %s: %s", self.jwks_url, exc)
            return bool(self._known_keys())
        if keys:
            self._fetched = (time.time(), keys)
        return bool(self._known_keys())

    def _known_keys(self) -> tuple[Ed25519PublicKey, ...]:
        return self._inline_keys or (self._fetched[1] if self._fetched else ())

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        try:
            payload = json.loads(call.body)
        except ValueError:
            return None
        request_id = dig(payload, "request_id")
        if not isinstance(request_id, str) or dig(payload, "status") not in ("OK", "ERROR"):
            return None
        headers = {k.lower(): v for k, v in call.headers.items()}
        if "x-fal-webhook-signature" not in headers:
            return CallbackResult(upstream_id=request_id, verified=False)
        keys = self._known_keys()
        if not keys:
            log.info("fal: no webhook keys known yet; callback for %s is only a hint", request_id)
            return CallbackResult(upstream_id=request_id, verified=False)
        if not verify_signature(headers, call.body, keys, time.time()):
            log.warning("fal: rejected a webhook with a bad signature (request %s)", request_id)
            return None
        return CallbackResult(
            upstream_id=request_id, verified=True, status=self._webhook_status(payload, request_id)
        )

    @staticmethod
    def _webhook_status(payload: JSON, request_id: str) -> UpstreamStatus | None:
        if payload.get("status") == "ERROR":
            error = _detail_error(
                payload.get("payload"), str(payload.get("error") or "fal reported an error")
            )
            error.request_id = request_id
            return UpstreamStatus(state="failed", error=error, raw_status="ERROR")
        output = _video_output(payload.get("payload"))
        if output is None:  # payload_error or an unknown shape: poll for the result instead
            return None
        return UpstreamStatus(state="succeeded", progress=100, outputs=(output,), raw_status="OK")
