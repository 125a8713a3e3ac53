"""Kyma (seed 004): async video jobs billed from a prepaid USD balance.

A client sets its base URL to ``http://HOST/kyma/v1`` and sends ``Bearer
ky-<vidgate key>`` (older ``kyma-`` keys, and the plain vidgate key, work too).

- ``POST /video/generations`` (and the OpenAI-style alias ``/videos/generations``;
  ``/genmedia/jobs`` for the Vertex ``veo-3*`` SKUs) answers **202** with the job
  object for a new job and **200** with the same job when the body's
  ``idempotency_key`` is replayed by the same API key (one hold, no new job).
- ``GET /jobs/{id}`` answers the same object at every stage: ``pending``,
  ``processing``, ``succeeded`` (``output.url``: vidgate's signed URL), ``failed``,
  ``expired``, ``refunded``. Money is USD numbers: ``estimated_cost`` (the hold,
  per-second price x duration) and ``charged_amount`` (set on success only).
- ``image_url`` makes the request an image-to-video one: the worker then calls the
  route's i2v model (``image_model`` in the catalog). ``extra`` goes to the
  provider unchanged and unvalidated (``provider_options``).
- ``/credits/balance``, ``/models`` and ``/auth/limits`` describe the account.

Status words: every generation failure is ``failed`` (its hold always comes back
through a ledger ``release``, Kyma's ``hold_release``); a job that ended without a
generation failure (canceled or deleted through another API) is ``refunded``;
the job deadline (Kyma's 10-minute runner timeout) is ``expired``.
Errors: ``{"error": {"code", "message", "type"}}`` with Kyma's codes.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from vidgate.api.auth import KeyForm, authenticate, bearer_token
from vidgate.api.context import Services, Svc, services
from vidgate.api.dialects.base import Dialect
from vidgate.api.errors import error_headers
from vidgate.api.media import media_links
from vidgate.api.openapi import NUMBER, OBJECT, STRING, json_body, obj
from vidgate.catalog.models import ModelSpec
from vidgate.clock import iso_ms
from vidgate.domain.job import Job, Principal
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.domain.states import JobStatus
from vidgate.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ModelUnavailable,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    UnknownModel,
    UpstreamFailed,
)
from vidgate.media.links import MediaLinks
from vidgate.money import usd
from vidgate.service.jobs import Idempotency

PREFIX = "/kyma/v1"
NAMESPACE = "kyma"
KEYS = KeyForm(prefixes=("ky-", "kyma-"))  # and the plain vidgate key
MAX_IDEMPOTENCY_KEY = 128

router = APIRouter(tags=["kyma"])

STATUS: dict[JobStatus, str] = {
    JobStatus.QUEUED: "pending",
    JobStatus.SUBMITTING: "pending",
    JobStatus.RUNNING: "processing",
    JobStatus.FETCHING: "processing",
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.EXPIRED: "expired",
    JobStatus.CANCELED: "refunded",
}
ERROR_CODE_OF_STATUS: dict[JobStatus, str] = {
    JobStatus.FAILED: "provider_error",
    JobStatus.EXPIRED: "timeout",
    JobStatus.CANCELED: "canceled",
}
# vidgate's field names (``GatewayError.param``) -> Kyma's 400 error codes.
CODE_OF_PARAM = {"model": "invalid_model", "prompt": "invalid_prompt", "duration": "invalid_duration"}


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller of ``Bearer ky-<key>`` (or ``kyma-<key>``, or the plain vidgate key)."""
    token = bearer_token(authorization)
    found = await authenticate(services(request).db, KEYS.secret(token) if token is not None else None)
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


# ------------------------------------------------------------------ request


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _model(svc: Services, body: dict[str, Any], *, genmedia: bool) -> ModelSpec:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("model is required: a supported video model", param="model")
    try:
        spec = svc.catalog.resolve(NAMESPACE, name)
    except UnknownModel:
        raise InvalidRequest(f"{name!r} is not a supported video model", param="model") from None
    if genmedia and not spec.dialect.get("genmedia"):
        raise InvalidRequest(f"{name!r} is not served on /genmedia/jobs (veo-3 SKUs only)", param="model")
    return spec


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest("prompt is required (1 to 4000 characters)", param="prompt")
    return prompt


def _duration(body: dict[str, Any]) -> int | None:
    value = body.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest("duration must be a number of seconds between 1 and 10", param="duration")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidRequest(f"duration must be a whole number of seconds, not {value}", param="duration")
    return int(value)


def _optional_text(body: dict[str, Any], name: str, *, max_length: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} must be a non-empty string", param=name)
    if max_length is not None and len(value) > max_length:
        raise InvalidRequest(f"{name} must be at most {max_length} characters", param=name)
    return value


def _extra(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("extra")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("extra must be an object (passed to the provider unchanged)", param="extra")
    return value


def to_request(svc: Services, body: dict[str, Any], *, genmedia: bool = False) -> GenerationRequest:
    spec = _model(svc, body, genmedia=genmedia)
    image_url = _optional_text(body, "image_url")
    if image_url is not None and not image_url.lower().startswith("https://"):
        raise InvalidRequest("image_url must be an HTTPS URL", param="image_url")
    return GenerationRequest(
        model=spec.id,
        prompt=_prompt(body),
        duration_s=_duration(body),
        images=(ImageInput(url=image_url, role="first_frame"),) if image_url else (),
        provider_options=_extra(body),
    )


# ------------------------------------------------------------------ jobs


async def _submit(request: Request, caller: Principal, svc: Services, *, genmedia: bool = False) -> Response:
    body = await _json_object(request)
    req = to_request(svc, body, genmedia=genmedia)
    key = _optional_text(body, "idempotency_key", max_length=MAX_IDEMPOTENCY_KEY)
    idem = Idempotency(key, f"kyma:{caller.key_id}") if key else None
    submitted = await svc.jobs.submit(caller, req, dialect=NAMESPACE, idempotency=idem)
    content = job_object(svc, submitted.job, media_links(request))
    return JSONResponse(content, status_code=202 if submitted.created else 200)


# The submit body, for the API description (the handlers read it themselves).
_BODY = json_body(
    obj(
        ["model", "prompt"],
        model=STRING, prompt=STRING, duration=NUMBER, image_url=STRING, idempotency_key=STRING, extra=OBJECT,
    )
)  # fmt: skip
_REPLAY: dict[int | str, dict[str, Any]] = {
    200: {"description": "An idempotency_key replay: the job made the first time"}
}


@router.post(
    "/video/generations",
    status_code=202,
    summary="Submit a video job",
    openapi_extra=_BODY,
    responses=_REPLAY,
)
async def create_video_job(request: Request, caller: Caller, svc: Svc) -> Response:
    return await _submit(request, caller, svc)


@router.post(
    "/videos/generations",
    status_code=202,
    summary="Submit a video job (OpenAI-style alias)",
    openapi_extra=_BODY,
    responses=_REPLAY,
)
async def create_video_job_alias(request: Request, caller: Caller, svc: Svc) -> Response:
    return await _submit(request, caller, svc)


@router.post(
    "/genmedia/jobs",
    status_code=202,
    summary="Submit a Vertex veo-3 job",
    openapi_extra=_BODY,
    responses=_REPLAY,
)
async def create_genmedia_job(request: Request, caller: Caller, svc: Svc) -> Response:
    return await _submit(request, caller, svc, genmedia=True)


@router.get("/jobs/{job_id}", summary="Poll a job")
async def get_job(job_id: str, request: Request, caller: Caller, svc: Svc) -> dict[str, Any]:
    return job_object(svc, await svc.jobs.get(caller, job_id), media_links(request))


def _money(micros: int | None) -> float | None:
    return None if micros is None else float(usd(micros))


def _model_name(svc: Services, job: Job) -> str:
    return svc.catalog.get(job.model).name if job.model in svc.catalog else job.model


def _output(job: Job, links: MediaLinks) -> dict[str, Any] | None:
    url = links.url(job, "video")
    if job.status is not JobStatus.SUCCEEDED or url is None or job.media is None:
        return None
    return {
        "url": url,
        "content_type": "video/mp4",
        "duration": job.media.duration_s,
        "width": job.media.width,
        "height": job.media.height,
        "thumbnail_url": links.url(job, "thumbnail"),
    }


def job_object(svc: Services, job: Job, links: MediaLinks) -> dict[str, Any]:
    """Kyma's ``video.job`` object (``job_id`` repeats ``id`` for clients that follow the prose)."""
    error = None
    if job.status in ERROR_CODE_OF_STATUS:
        error = {
            "code": ERROR_CODE_OF_STATUS[job.status],
            "message": job.error_message or f"the job ended {job.status.value}",
        }
    return {
        "id": job.id,
        "job_id": job.id,
        "object": "video.job",
        "status": STATUS[job.status],
        "model": _model_name(svc, job),
        "created_at": iso_ms(job.created_at),
        "completed_at": iso_ms(job.completed_at),
        "output": _output(job, links),
        "error": error,
        "estimated_cost": _money(job.estimated_micros),
        "charged_amount": _money(job.charged_micros) if job.status is JobStatus.SUCCEEDED else None,
    }


# ------------------------------------------------------------------ account and catalog


@router.get("/credits/balance", summary="The prepaid USD balance")
async def credits_balance(caller: Caller, svc: Svc) -> dict[str, Any]:
    balance = await svc.accounts.balance(caller)
    return {
        "object": "credits.balance",
        "balance": float(usd(balance.available_micros)),
        "held": float(usd(balance.held_micros)),
        "currency": "USD",
        "mode": caller.mode,
    }


@router.get("/models", summary="The video models and their per-second prices")
async def list_models(svc: Svc) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(spec) for spec in svc.catalog.in_namespace(NAMESPACE)]}


def model_object(spec: ModelSpec) -> dict[str, Any]:
    price = spec.price
    per_second = float(price.amount) if price is not None and price.amount is not None else None
    return {
        "id": spec.name,
        "object": "model",
        "created": 0,
        "owned_by": spec.vendor.lower(),
        "type": "video",
        "name": spec.label,
        "description": spec.description,
        "pricing": {"per_second_usd": per_second, "unit": "second"},
        "durations": {"min": min(spec.durations), "max": max(spec.durations)},
        "image_to_video": spec.image != "none",
        "audio": spec.audio != "none",
        "resolution": spec.default_resolution,
        "available": spec.orderable,
    }


@router.get("/auth/limits", summary="The key's rate limit and today's spend")
async def auth_limits(caller: Caller, svc: Svc) -> dict[str, Any]:
    limit = caller.rate_limit_per_minute or svc.settings.rate_limit_per_minute
    balance = await svc.accounts.balance(caller)
    used_today = await svc.accounts.spend_today(caller)
    # The limiter keeps its window counts to itself; used is not reported (0).
    return {
        "rpm_limit": limit,
        "rpm_used": 0,
        "rpm_remaining": limit,
        "has_credits": balance.available_micros > 0,
        "used_today": float(usd(used_today)),
    }


# ------------------------------------------------------------------ errors


def render_error(error: GatewayError) -> Response:
    """``{"error": {"code", "message", "type"}}`` with Kyma's codes and statuses."""
    status, code, kind = error.status, error.code, error.type
    if isinstance(error, ModelUnavailable | UnknownModel):
        status, code, kind = 400, "invalid_model", "invalid_request_error"
    elif isinstance(error, AuthenticationFailed | PermissionDenied):
        status, code, kind = 401, "auth_error", "authentication_error"
    elif isinstance(error, InvalidRequest) and status == 400:
        code = CODE_OF_PARAM.get(error.param or "", "invalid_request")
    elif isinstance(error, PayloadTooLarge):
        code = "invalid_request"
    elif isinstance(error, RateLimited):
        code, kind = "rate_limited", "rate_limit"
    elif isinstance(error, UpstreamFailed):
        code = "provider_error"
    elif status >= 500:
        code = "db_error"
    body = {"error": {"code": code, "message": error.message, "type": kind}}
    return JSONResponse(body, status_code=status, headers=error_headers(error))


DIALECT = Dialect(name=NAMESPACE, prefix=PREFIX, router=router, render_error=render_error, keys=KEYS)
