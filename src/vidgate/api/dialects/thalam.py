"""Thalam (seed 000): ``POST /videos/generations`` then ``GET /videos/tasks/{task_id}``.

A client sets its base URL to ``http://HOST/thalam/v1`` and its key to
``tl-<vidgate key>`` (Thalam keys are ``tl-`` prefixed; a key without it is
refused, as Thalam refuses one). ``duration`` is a number: a fraction (5.5) is
rounded up for the upstream and billed as asked (see ``_duration``). The wire shape is Novita's v3 async task
envelope: submit answers ``{"task_id", "status": "processing"}``, the poll
answers ``{"task": {"task_id", "status": "TASK_STATUS_*", "reason"}, "videos": [...]}``,
and the result is ``videos[0].video_url`` (vidgate's own signed URL).

Thalam answers submit-time upstream trouble synchronously, so submit waits for
the worker's upstream acknowledgement (bounded): an unacknowledged submission
is a 504, an unreadable upstream answer a 502 with ``x-upstream-request-id``;
either way the hold was released and nothing was charged. Errors use the
OpenAI envelope ``{"error": {"message", "type", "code", "param"}}``.
"""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from vidgate.api.auth import KeyForm, authenticate, bearer_token
from vidgate.api.context import Services, Svc, services
from vidgate.api.dialects.base import Dialect
from vidgate.api.errors import error_headers
from vidgate.api.media import media_links
from vidgate.api.openapi import INTEGER, NUMBER, STRING, error_responses, json_body, obj
from vidgate.domain.job import Job, Principal
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.domain.states import JobStatus
from vidgate.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    UpstreamFailed,
)
from vidgate.media.links import MediaLinks

PREFIX = "/thalam/v1"
NAMESPACE = "thalam"
KEYS = KeyForm(prefixes=("tl-",), bare=False)  # Thalam refuses a key without its prefix

router = APIRouter(tags=["thalam"])

TASK_STATUS: dict[JobStatus, str] = {
    JobStatus.QUEUED: "TASK_STATUS_QUEUED",
    JobStatus.SUBMITTING: "TASK_STATUS_QUEUED",
    JobStatus.RUNNING: "TASK_STATUS_PROCESSING",
    JobStatus.FETCHING: "TASK_STATUS_PROCESSING",
    JobStatus.SUCCEEDED: "TASK_STATUS_SUCCEED",
    # Thalam has no canceled or expired word; its clients stop on FAILED (refunded).
    JobStatus.FAILED: "TASK_STATUS_FAILED",
    JobStatus.EXPIRED: "TASK_STATUS_FAILED",
    JobStatus.CANCELED: "TASK_STATUS_FAILED",
}

# Submit-time upstream failures Thalam answers synchronously, by vidgate error code.
SYNC_FAILURES: dict[str, tuple[int, str]] = {
    "upstream_timeout": (
        504,
        "the upstream did not acknowledge the submission in time; nothing was charged, retry",
    ),
    "upstream_protocol_error": (
        502,
        "the upstream returned an unexpected response; nothing was charged",
    ),
}
ACK_GRACE_S = 10.0


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller of a ``Bearer tl-<vidgate key>`` header."""
    token = bearer_token(authorization)
    if token is None:
        raise AuthenticationFailed(
            "missing API key: send Authorization: Bearer tl-<your key>", code="missing_api_key"
        )
    secret = KEYS.secret(token)
    if secret is None:
        raise AuthenticationFailed("invalid API key: Thalam keys start with tl-")
    found = await authenticate(services(request).db, secret)
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


# ------------------------------------------------------------------ request


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name} is required", param=name, code=f"missing_{name}")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string", param=name)
    return value


def _duration(body: dict[str, Any]) -> tuple[int | None, Decimal | None]:
    """``duration``, a JSON number of seconds (5, 5.0 or 5.5), as (whole seconds, asked).

    A fraction is rounded up for the upstream (5.5 asks for a 6 s clip) and billed as
    asked, by the seed's linear rule (5.5 s costs 5.5/5 of a 5 s clip).
    """
    value = body.get("duration")
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest("duration must be a number of seconds (1 to 30)", param="duration")
    if value < 1:
        raise InvalidRequest(f"duration must be between 1 and 30 seconds, not {value}", param="duration")
    if isinstance(value, int) or value.is_integer():
        return int(value), None
    asked = Decimal(repr(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return math.ceil(value), asked


def _https(url: str, name: str) -> str:
    if not url.lower().startswith("https://") or len(url) <= len("https://"):
        raise InvalidRequest(f"{name} must be an HTTPS URL", param=name)
    return url


def to_request(svc: Services, body: dict[str, Any]) -> GenerationRequest:
    """The Thalam body as a GenerationRequest; Thalam's own rules are checked here."""
    name = _text(body, "model", required=True) or ""
    spec = svc.catalog.resolve(NAMESPACE, name)
    prompt = _text(body, "prompt", required=True) or ""
    image_url = _text(body, "image_url")
    if image_url is None and spec.requires_image:
        raise InvalidRequest(
            f"image_url is required for i2v models ({name})", param="image_url", code="missing_image_url"
        )
    provider_options: dict[str, Any] = {}
    if spec.dialect.get("needs_reference_video"):
        video_url = _text(body, "video_url")
        if video_url is None:
            raise InvalidRequest(
                f"video_url (the motion reference video) is required by {name}",
                param="video_url",
                code="missing_video_url",
            )
        provider_options["video_url"] = _https(video_url, "video_url")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest("seed must be an integer", param="seed")
    images = (ImageInput(url=_https(image_url, "image_url"), role="first_frame"),) if image_url else ()
    seconds, asked = _duration(body)
    return GenerationRequest(
        model=spec.id,
        prompt=prompt,
        duration_s=seconds,
        asked_duration_s=asked,
        resolution=_text(body, "resolution"),
        aspect_ratio=_text(body, "aspect_ratio"),
        images=images,
        seed=seed,
        provider_options=provider_options,
    )


# ------------------------------------------------------------------ routes


@router.post(
    "/videos/generations",
    summary="Submit an async video task",
    openapi_extra=json_body(
        obj(
            ["model", "prompt"],
            model=STRING, prompt=STRING, duration=NUMBER, resolution=STRING, aspect_ratio=STRING,
            image_url=STRING, video_url=STRING, seed=INTEGER,
        )
    ),
    responses=error_responses({502: "The upstream refused the task", 504: "The upstream did not answer"}),
)  # fmt: skip
async def create_task(request: Request, caller: Caller, svc: Svc) -> dict[str, Any]:
    body = await _json_object(request)
    submitted = await svc.jobs.submit(caller, to_request(svc, body), dialect=NAMESPACE)
    wait_s = svc.settings.upstream_timeout_s + ACK_GRACE_S
    job = await svc.jobs.acknowledged_or_abandoned(submitted.job, timeout_s=wait_s)
    if job.terminal and (job.error_code in SYNC_FAILURES or job.status is JobStatus.CANCELED):
        status, message = SYNC_FAILURES.get(
            job.error_code or "",
            (502, f"the upstream refused the submission ({job.error_message}); nothing was charged"),
        )
        raise UpstreamFailed(message, status=status, request_id=job.upstream_request_id or job.id)
    return {"task_id": job.id, "status": "processing"}


@router.get("/videos/tasks/{task_id}", summary="Poll a task")
async def get_task(task_id: str, request: Request, caller: Caller, svc: Svc) -> dict[str, Any]:
    job = await svc.jobs.get(caller, task_id)
    if job.status is JobStatus.SUCCEEDED and job.media_deleted_at is not None:
        # Thalam forgets old tasks; a task whose video is gone reads as unknown.
        raise NotFound(f"task {task_id!r} has expired: its video is no longer stored", param="task_id")
    return task_object(job, media_links(request))


def task_object(job: Job, links: MediaLinks) -> dict[str, Any]:
    """The Novita-style poll envelope; ``progress_percent`` and ``eta`` are additive."""
    reason = ""
    if job.status in (JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELED):
        reason = job.error_message or f"the task ended {job.status.value}"
    videos = [{"video_url": url, "video_type": "mp4"} for url in links.all_videos(job)]
    eta = 0 if job.terminal or job.eta_s is None else max(0, round(job.eta_s))
    return {
        "task": {
            "task_id": job.id,
            "status": TASK_STATUS[job.status],
            "reason": reason,
            "progress_percent": job.progress,
            "eta": eta,
        },
        "videos": videos if job.status is JobStatus.SUCCEEDED else [],
    }


# ------------------------------------------------------------------ errors


def render_error(error: GatewayError) -> Response:
    """The OpenAI error envelope Thalam advertises.

    A model that cannot be ordered (``minimax/hailuo-02``, "coming soon") is a 404
    like any model outside the catalog; a generic invalid field gets the code
    ``invalid_<field>``.
    """
    status, code, kind = error.status, error.code, error.type
    if isinstance(error, ModelUnavailable):
        status, kind = 404, "not_found_error"
    if code == "invalid_request" and error.param and status == 400:
        code = "invalid_" + error.param.replace(".", "_")
    body = {"error": {"message": error.message, "type": kind, "code": code, "param": error.param}}
    return JSONResponse(body, status_code=status, headers=error_headers(error))


DIALECT = Dialect(name=NAMESPACE, prefix=PREFIX, router=router, render_error=render_error, keys=KEYS)
