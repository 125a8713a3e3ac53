"""Replicate predictions API adapter (``api.replicate.com/v1``).

Wire facts (specs/upstream-protocols.md §2, replicate-python SDKs and replicate.com docs):

- ``Authorization: Bearer <token>``.
- Create: ``POST /v1/models/{owner}/{name}/predictions`` for an ``owner/name`` model,
  ``POST /v1/predictions`` with ``version`` for ``owner/name:<hex>`` or a bare 64-hex
  version, ``POST /v1/deployments/{owner}/{name}/predictions`` for a route model spelt
  ``deployments/owner/name``. The body is ``{"input": {...}, "webhook"?,
  "webhook_events_filter"?}``; the answer (200 or 201) is the Prediction. No
  ``Prefer: wait``: the gateway polls.
- Prediction ``status``: ``starting`` / ``processing`` / ``succeeded`` / ``failed`` /
  ``canceled`` (``aborted`` is UNCONFIRMED and read as failed); ``error`` is a string;
  ``output`` is a URI string or a list of them; ``logs`` carry tqdm progress lines
  (``42%|████  | 42/100 [00:10<00:14, ...]``), read here for progress and an ETA as the
  SDK does.
- ``GET /v1/predictions/{id}``; ``POST /v1/predictions/{id}/cancel``.
- API predictions' data is deleted after 1 h: ``data_removed: true`` then means the
  output is gone (``UpstreamOutputExpired``).
- Webhooks carry the Prediction and are signed with Standard Webhooks (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``; HMAC-SHA256 over ``"{id}.{ts}.{body}"``
  with the base64 key after ``whsec_``). The secret is ``ctx.options["webhook_secret"]``
  (``GET /v1/webhooks/default/secret``). Without it a webhook is only a hint to poll.
- Errors are RFC 7807 problem JSON (``title``, ``detail``, ``status``); 402 (billing,
  UNCONFIRMED) is the operator's account problem, reported as an auth error.

Replicate has no structured content-policy signal: a refused prediction is ``failed``
with a model-specific message, reported as ``UpstreamRejected`` with that message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from vidgate.domain.job import ReportedCost
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
    callback_url_for,
    deep_merge,
    dig,
    expect_dict,
    merge_under,
    request_id_of,
    request_json,
)

log = logging.getLogger(__name__)

State = Literal["queued", "running", "succeeded", "failed", "canceled"]

_STATES: Mapping[str, State] = {
    "starting": "queued",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "aborted": "failed",
    "canceled": "canceled",
}
WEBHOOK_EVENTS = ("start", "completed")
_VERSION = re.compile(r"^[0-9a-f]{64}$")
# tqdm: "42%|████      | 42/100 [00:10<00:14,  4.10it/s]"
_TQDM = re.compile(r"(\d{1,3})%\|[^|\n]*\|\s*\d+/\d+(?:\s*\[[^<\]\n]*<([\d:]+))?")

# Model-name prefix -> (first-frame input, last-frame input). Replicate's inputs are
# per model; these follow the model pages and are UNCONFIRMED beyond the spec. Other
# models get ``image`` and no last frame; provider_options can always add fields.
_IMAGE_FIELDS: Mapping[str, tuple[str, str | None]] = {
    "kwaivgi/kling": ("start_image", "end_image"),
    "minimax/": ("first_frame_image", "last_frame_image"),
    "google/veo": ("image", "last_frame"),
}


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    """Problem JSON: keep ``detail`` (and ``title``); 402 is the operator's billing."""
    if not isinstance(body, dict):
        return None
    detail, title = body.get("detail"), body.get("title")
    message = next((m for m in (detail, title) if isinstance(m, str) and m), None)
    if message is None:
        return None
    if isinstance(title, str) and title and title != message:
        message = f"{title}: {message}"
    if status == 402:
        return UpstreamAuthError(message, status_code=status, request_id=request_id)
    if 400 <= status < 500 and status not in (401, 403, 408, 429):
        return UpstreamRejected(message, status_code=status, request_id=request_id)
    return None


def progress_of(logs: Any) -> tuple[int | None, float | None]:
    """The last tqdm percentage in ``logs`` and its remaining time, when present."""
    if not isinstance(logs, str):
        return None, None
    matches = _TQDM.findall(logs)
    if not matches:
        return None, None
    percent, remaining = matches[-1]
    eta: float | None = None
    if remaining:
        eta = 0.0
        for part in remaining.split(":"):
            eta = eta * 60 + int(part)
    return min(100, int(percent)), eta


def _outputs(output: Any) -> tuple[UpstreamOutput, ...]:
    items = output if isinstance(output, list) else [output]
    return tuple(UpstreamOutput(url=item) for item in items if isinstance(item, str) and item)


# How Replicate words a safety refusal in a failed prediction's error (its E005 error:
# "The input or output was flagged as sensitive").
_MODERATION = ("flagged as sensitive", "(e005)", "nsfw", "content policy")


def is_moderation(reason: str) -> bool:
    text = reason.lower()
    return any(phrase in text for phrase in _MODERATION)


def _gpu_time(prediction: JSON) -> ReportedCost | None:
    """``metrics.predict_time``: the GPU seconds a time-billed (community) model is billed for;
    official models bill per output, so the catalog prices only the former in these units."""
    metrics = prediction.get("metrics")
    return usage.units(metrics.get("predict_time"), "predict-seconds") if isinstance(metrics, dict) else None


def prediction_status(prediction: JSON) -> UpstreamStatus:
    """Normalise one Prediction object (from a poll or a webhook)."""
    word = prediction.get("status")
    if not isinstance(word, str):
        raise UpstreamProtocolError("Replicate's prediction has no status")
    pid = prediction.get("id") if isinstance(prediction.get("id"), str) else None
    state = state_for("replicate", _STATES, word, pid)
    if state == "succeeded":
        outputs = _outputs(prediction.get("output"))
        if not outputs and prediction.get("data_removed"):
            gone = UpstreamOutputExpired("Replicate removed the output (1 h retention)")
            gone.request_id = pid
            return UpstreamStatus(state="failed", error=gone, raw_status=word)
        if not outputs:
            raise UpstreamProtocolError("Replicate's prediction succeeded without an output URL")
        return UpstreamStatus(
            state="succeeded",
            progress=100,
            outputs=outputs,
            raw_status=word,
            reported_cost=_gpu_time(prediction),
        )
    if state == "failed":
        reason = prediction.get("error")
        message = reason if isinstance(reason, str) and reason else f"prediction {word}"
        cls = UpstreamContentPolicy if is_moderation(message) else UpstreamRejected
        error = cls(message, request_id=pid)
        return UpstreamStatus(
            state="failed", error=error, raw_status=word, reported_cost=_gpu_time(prediction)
        )
    progress, eta = progress_of(prediction.get("logs")) if state == "running" else (None, None)
    return UpstreamStatus(state=state, progress=progress, eta_s=eta, raw_status=word)


class ReplicateAdapter(AdapterBase):
    """Replicate's predictions: create, poll, cancel, signed webhooks."""

    name = "replicate"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.CALLBACK,
            Capability.SIGNED_CALLBACK,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.AUDIO,
            Capability.NEGATIVE_PROMPT,
            Capability.SEED,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        base = ctx.base_url.rstrip("/")
        self._api = base if base.endswith("/v1") else f"{base}/v1"
        self._webhook: Webhook | None = None
        if secret := ctx.options.get("webhook_secret"):
            try:
                self._webhook = Webhook(secret)
            except (ValueError, RuntimeError, EmptyWebhookSecretError):
                log.warning("replicate: the webhook_secret option is not a whsec_ secret")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._ctx.api_key}"} if self._ctx.api_key else {}

    # ------------------------------------------------------------------ submit

    def build_input(self, req: GenerationRequest, model: str, route: Route) -> JSON:
        """The model's ``input``: request fields, then route params, then provider_options."""
        data: JSON = {"prompt": req.prompt}
        if req.negative_prompt:
            data["negative_prompt"] = req.negative_prompt
        if req.duration_s is not None:
            data["duration"] = req.duration_s
        if req.aspect_ratio:
            data["aspect_ratio"] = req.aspect_ratio
        if req.resolution:
            data["resolution"] = req.resolution
        if req.seed is not None:
            data["seed"] = req.seed
        if req.audio is not None:
            data["generate_audio"] = req.audio
        name = model.removeprefix("deployments/")
        prefix = next((p for p in _IMAGE_FIELDS if name.startswith(p)), None)
        first_field, last_field = _IMAGE_FIELDS[prefix] if prefix else ("image", None)
        if req.first_frame:
            data[first_field] = req.first_frame
        if req.last_frame and last_field:
            data[last_field] = req.last_frame
        deep_merge(data, route.params)
        return merge_under(data, req.provider_options)

    def _create_call(self, model: str) -> tuple[str, JSON]:
        """(URL, body without input) for the three create routes."""
        if model.startswith("deployments/"):
            return f"{self._api}/{model}/predictions", {}
        if ":" in model or _VERSION.match(model):
            return f"{self._api}/predictions", {"version": model}
        if model.count("/") != 1:
            raise UpstreamRejected(f"not a Replicate model: {model!r}")
        return f"{self._api}/models/{model}/predictions", {}

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        """No idempotency key or reference field exists; the webhook URL names the job."""
        model = route.image_model if req.first_frame and route.image_model else route.model
        url, body = self._create_call(model.strip("/"))
        body["input"] = self.build_input(req, model, route)
        if webhook := callback_url_for(self._ctx, attempt):
            body["webhook"] = webhook
            body["webhook_events_filter"] = list(WEBHOOK_EVENTS)
        answer, response = await request_json(
            self._ctx, "POST", url, json_body=body, headers=self._headers(), classify=_classify, submit=True
        )
        request_id = request_id_of(response)
        pid = accepted_id(answer, "id", request_id=request_id, what="prediction id")
        with acceptance():
            if not isinstance(dig(answer, "status"), str):
                raise UpstreamProtocolError("Replicate's answer is not a prediction", request_id=request_id)
        return UpstreamRef(id=pid, request_id=request_id or pid, state={})

    # -------------------------------------------------------------------- poll

    async def check(self) -> bool:
        """``GET /v1/account``: who the token belongs to."""
        await request_json(
            self._ctx, "GET", f"{self._api}/account", headers=self._headers(), classify=_classify
        )
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        answer, response = await request_json(
            self._ctx,
            "GET",
            f"{self._api}/predictions/{ref.id}",
            headers=self._headers(),
            classify=_classify,
        )
        return prediction_status(expect_dict(answer, request_id_of(response)))

    async def cancel(self, ref: UpstreamRef) -> None:
        await request_json(
            self._ctx,
            "POST",
            f"{self._api}/predictions/{ref.id}/cancel",
            headers=self._headers(),
            classify=_classify,
            allow_empty=True,
        )

    # --------------------------------------------------------------- callbacks

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        try:
            prediction = expect_dict(json.loads(call.body))
        except (UpstreamProtocolError, ValueError):
            return None
        pid = prediction.get("id")
        if not isinstance(pid, str) or not isinstance(prediction.get("status"), str):
            return None
        headers = {k.lower(): v for k, v in call.headers.items()}
        if self._webhook is None or "webhook-signature" not in headers:
            return CallbackResult(upstream_id=pid, verified=False)
        try:
            self._webhook.verify(call.body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            log.warning("replicate: rejected a webhook for %s: %s", pid, exc)
            return None
        try:
            status = prediction_status(prediction)
        except UpstreamProtocolError:
            status = None  # a signed but odd body: poll for the real state
        return CallbackResult(upstream_id=pid, verified=True, status=status)
