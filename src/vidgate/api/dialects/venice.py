"""Venice.ai (seed 001): queue, retrieve, quote and complete, all POSTs with JSON bodies.

A client sets its base URL to ``http://HOST/venice/api/v1`` and sends its plain
vidgate key as ``Authorization: Bearer <key>``. A job is named by ``model`` plus
``queue_id`` (the job id as a UUID) together; the wrong model reads as unknown.

- ``/video/queue`` answers exactly ``{"model", "queue_id"}``; the hold is placed.
- ``/video/retrieve`` answers JSON ``{"status": "PROCESSING", ...}`` while the job
  runs and the MP4 itself (``Content-Type: video/mp4``) when it is done; there is no
  failed status: a failure is the HTTP error of the retrieve call (422 for a
  content-policy refusal, in Venice's current ``{"error": {"message", "type":
  "provider_content_policy", "credits_refunded"}}`` shape, 500 otherwise, both
  saying the credits were refunded).
  ``delete_media_on_completion: true`` forgets the media as it is served: the
  next retrieve is a 404.
- ``/video/complete`` deletes the stored media; ``/video/quote`` prices a request
  without creating anything (no key needed); ``GET /models?type=video`` lists the
  video models with Venice's ``model_spec.constraints``.

Authenticated answers carry ``x-venice-balance-usd`` (the balance before the
request). Errors are Venice's: ``{"error": "..."}`` (plus a ``code`` word), the
zod-style ``DetailedError`` for 400s, ``{"code": "PAYLOAD_TOO_LARGE", "error"}``
for 413.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.background import BackgroundTask

from vidgate.api.auth import authenticate, bearer_token
from vidgate.api.context import Services, Svc, services
from vidgate.api.dialects._venice_schema import (
    COMPLETE_FIELDS,
    QUEUE_FIELDS,
    QUOTE_FIELDS,
    RETRIEVE_FIELDS,
    detailed_body,
    job_reference,
    model_object,
    queue_request,
    quote_request,
    read_object,
    refuse,
)
from vidgate.api.dialects.base import Dialect, LimitHeaders, RouteLimit
from vidgate.api.errors import error_headers
from vidgate.api.media import range_response
from vidgate.api.openapi import BOOLEAN, STRING, STRINGS, json_body, media_response, obj
from vidgate.clock import utcnow
from vidgate.domain.job import Job, Principal
from vidgate.domain.states import JobStatus
from vidgate.errors import (
    AuthenticationFailed,
    GatewayError,
    InsufficientFunds,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    UnknownModel,
)
from vidgate.ids import job_id_from_uuid, job_id_to_uuid
from vidgate.media.links import media_key
from vidgate.money import format_usd, usd

PREFIX = "/venice/api/v1"
NAMESPACE = "venice"
DEFAULT_AVERAGE_MS = 120_000  # P80 runtime shown before the upstream gives an estimate
MODEL_TYPES = frozenset(
    {"asr", "embedding", "image", "music", "text", "tts", "upscale", "inpaint", "video", "all", "code"}
)
MEDIA_NOT_FOUND = "Media could not be found. It may be invalid, expired, or deleted."
REFUNDED = "Credits have been refunded."
CODE_OF_STATUS = {
    400: "INVALID_REQUEST",
    401: "AUTHENTICATION_FAILED",
    402: "INSUFFICIENT_BALANCE",
    403: "UNAUTHORIZED",
    413: "PAYLOAD_TOO_LARGE",
    415: "INVALID_CONTENT_TYPE",
    422: "CONTENT_POLICY_VIOLATION",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INFERENCE_FAILED",
    503: "MODEL_AT_CAPACITY",
}

router = APIRouter(tags=["venice"])

# Venice's documented per-route limits, and its names for the rate-limit headers.
ROUTE_LIMITS = (RouteLimit("POST", "/video/queue", 40), RouteLimit("POST", "/video/retrieve", 120))
LIMIT_HEADERS = LimitHeaders(
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"
)


class UnsupportedContentType(GatewayError):
    status = 415
    code = "invalid_content_type"


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller of a ``Bearer <vidgate key>`` header, with the balance before this request."""
    svc = services(request)
    found = await authenticate(svc.db, bearer_token(authorization))
    request.state.principal = found
    balance = await svc.accounts.balance(found)
    request.state.venice_balance_micros = balance.available_micros
    return found


Caller = Annotated[Principal, Depends(principal)]


def _balance_headers(request: Request) -> dict[str, str]:
    micros = getattr(request.state, "venice_balance_micros", None)
    return {} if micros is None else {"x-venice-balance-usd": format_usd(micros)}


async def _body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    content_type = request.headers.get("content-type")
    if content_type and "json" not in content_type.lower():
        raise UnsupportedContentType(f"Content-Type must be application/json, not {content_type!r}")
    return read_object(await request.body(), allowed)


def _model_name(svc: Services, job: Job) -> str:
    return svc.catalog.get(job.model).name if job.model in svc.catalog else job.model


async def _find(svc: Services, caller: Principal, model: str, queue_id: str) -> Job:
    """The job named by (model, queue_id); any mismatch is Venice's 404."""
    job_id = job_id_from_uuid(queue_id)
    missing = NotFound(MEDIA_NOT_FOUND, code="media_not_found")
    if job_id is None:
        raise missing
    try:
        job = await svc.jobs.get(caller, job_id)
    except NotFound:
        raise missing from None
    if _model_name(svc, job) != model:
        raise missing
    return job


# ------------------------------------------------------------------ routes


@router.post(
    "/video/queue",
    summary="Queue a video generation",
    openapi_extra=json_body(
        obj(
            ["model", "prompt"],
            model=STRING, prompt=STRING, negative_prompt=STRING, duration=STRING, resolution=STRING,
            aspect_ratio=STRING, audio=BOOLEAN, image_url=STRING, end_image_url=STRING,
            reference_image_urls=STRINGS,
        )
    ),
)  # fmt: skip
async def queue_video(request: Request, caller: Caller, svc: Svc) -> Response:
    name, req = queue_request(svc.catalog, await _body(request, QUEUE_FIELDS))
    submitted = await svc.jobs.submit(caller, req, dialect=NAMESPACE)
    content = {"model": name, "queue_id": job_id_to_uuid(submitted.job.id)}
    return JSONResponse(content, headers=_balance_headers(request))


@router.post(
    "/video/retrieve",
    summary="Poll a video, or download it when done",
    openapi_extra=json_body(
        obj(["model", "queue_id"], model=STRING, queue_id=STRING, delete_media_on_completion=BOOLEAN)
    ),
    responses=media_response("application/json", "video/mp4"),
)
async def retrieve_video(request: Request, caller: Caller, svc: Svc) -> Response:
    model, queue_id, delete = job_reference(await _body(request, RETRIEVE_FIELDS))
    job = await _find(svc, caller, model, queue_id)
    headers = _balance_headers(request)
    if not job.terminal:
        return JSONResponse(processing_object(job), headers=headers)
    if job.status is not JobStatus.SUCCEEDED:
        return _failure(job, headers)
    key = media_key(job, "video")
    if key is None:
        raise NotFound(MEDIA_NOT_FOUND, code="media_not_found")
    response = await range_response(svc.storage, key, request=request, content_type="video/mp4")
    response.headers.update(headers)
    if delete:
        # Forgotten now, so the next retrieve is a 404; the bytes go once they are sent.
        await svc.jobs.delete_media(caller, job.id, keep_bytes=True)
        response.background = BackgroundTask(svc.jobs.remove_media, job.id)
    return response


def processing_object(job: Job) -> dict[str, Any]:
    """``PROCESSING`` with the elapsed time and the expected total, in milliseconds."""
    elapsed = max(0, int((utcnow() - job.created_at).total_seconds() * 1000))
    if job.eta_s is not None:
        average = elapsed + max(0, int(job.eta_s * 1000))
    else:
        average = max(DEFAULT_AVERAGE_MS, elapsed)
    return {"status": "PROCESSING", "average_execution_time": average, "execution_duration": elapsed}


def _failure(job: Job, headers: dict[str, str]) -> Response:
    """A job that ended without a video, as the HTTP error Venice's retrieve answers."""
    if job.status is JobStatus.CANCELED:
        return _standard(404, MEDIA_NOT_FOUND, "MEDIA_NOT_FOUND", headers)
    reason = (job.error_message or f"the job {job.status.value}").rstrip(".")
    if job.error_code == "content_policy_violation":
        return _content_policy(f"{reason}. {REFUNDED}", headers)
    return _standard(
        500, f"Inference failed: {reason}. {REFUNDED}", "INFERENCE_FAILED", headers, credits_refunded=True
    )


@router.post(
    "/video/complete",
    summary="Delete a finished video from storage",
    openapi_extra=json_body(obj(["model", "queue_id"], model=STRING, queue_id=STRING)),
)
async def complete_video(request: Request, caller: Caller, svc: Svc) -> Response:
    model, queue_id, _ = job_reference(await _body(request, COMPLETE_FIELDS))
    job = await _find(svc, caller, model, queue_id)
    if not job.terminal:
        raise refuse("queue_id", "The video is still processing; complete it after it has finished")
    if job.media is not None and job.media_deleted_at is None:
        await svc.jobs.delete_media(caller, job.id)
    return JSONResponse({"success": True}, headers=_balance_headers(request))


@router.post(
    "/video/quote",
    summary="Price a video generation in USD",
    openapi_extra=json_body(
        obj(["model"], model=STRING, duration=STRING, resolution=STRING, aspect_ratio=STRING, audio=BOOLEAN)
    ),
)
async def quote_video(request: Request, svc: Svc) -> dict[str, Any]:
    req = quote_request(svc.catalog, await _body(request, QUOTE_FIELDS))
    _, _, price = svc.jobs.prepare(None, req)
    return {"quote": float(usd(price.micros))}


@router.get("/models", summary="The model catalog (type=video for video models)")
async def list_models(svc: Svc, type: Annotated[str, Query()] = "text") -> dict[str, Any]:
    if type not in MODEL_TYPES:
        choices = " | ".join(f"'{t}'" for t in sorted(MODEL_TYPES))
        message = f"Invalid enum value. Expected {choices}, received '{type}'"
        raise refuse("type", message, "invalid_enum_value")
    specs = svc.catalog.in_namespace(NAMESPACE) if type in ("video", "all") else []
    return {"object": "list", "type": type, "data": [model_object(spec) for spec in specs]}


# ------------------------------------------------------------------ errors


def _standard(
    status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """Venice's StandardError ``{"error": "..."}``, with its code word alongside."""
    return JSONResponse({"error": message, "code": code, **extra}, status_code=status, headers=headers)


def _content_policy(message: str, headers: dict[str, str]) -> JSONResponse:
    """Venice's current ``ProviderContentPolicyError``: ``error`` is an object
    (``message``, ``type: "provider_content_policy"``, ``credits_refunded``); the
    seed-era body's ``code`` and top-level ``credits_refunded`` stay beside it."""
    body = {
        "error": {"message": message, "type": "provider_content_policy", "credits_refunded": True},
        "code": "CONTENT_POLICY_VIOLATION",
        "credits_refunded": True,
    }
    return JSONResponse(body, status_code=422, headers=headers)


def render_error(error: GatewayError) -> Response:
    """Venice's error bodies: DetailedError for 400, StandardError otherwise."""
    headers = error_headers(error)
    status = error.status
    if isinstance(error, UnknownModel | ModelUnavailable) or (
        isinstance(error, InvalidRequest) and status == 400
    ):
        return JSONResponse(detailed_body(error), status_code=400, headers=headers)
    if isinstance(error, PayloadTooLarge):
        message = f"File exceeds the maximum allowed size: {error.message}"
        body = {"code": "PAYLOAD_TOO_LARGE", "error": message}
        return JSONResponse(body, status_code=413, headers=headers)
    if isinstance(error, InsufficientFunds):
        message = f"Insufficient USD or Diem balance to complete request ({error.message})"
        return _standard(402, message, "INSUFFICIENT_BALANCE", headers)
    if isinstance(error, AuthenticationFailed | PermissionDenied):
        return _standard(401, f"Authentication failed: {error.message}", "AUTHENTICATION_FAILED", headers)
    if isinstance(error, RateLimited):
        headers.update(
            {
                LIMIT_HEADERS.limit: str(error.limit),
                LIMIT_HEADERS.remaining: "0",
                LIMIT_HEADERS.reset: str(error.reset_at),
            }
        )
    code = CODE_OF_STATUS.get(status) if status != 404 else None
    return _standard(status, error.message, code or error.code.upper(), headers)


DIALECT = Dialect(
    name=NAMESPACE,
    prefix=PREFIX,
    router=router,
    render_error=render_error,
    route_limits=ROUTE_LIMITS,
    limit_headers=LIMIT_HEADERS,
    job_ids=lambda queue_id: tuple(filter(None, [job_id_from_uuid(queue_id)])),
)
