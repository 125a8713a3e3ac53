"""Apiframe v2 (seed 003), mounted at ``/apiframe``.

An Apiframe client sets its base URL to ``http://HOST/apiframe`` and keeps its code:

* ``POST /v2/videos/generate`` answers ``202 {"jobId", "status"}``; the body is
  Apiframe's per-model ``oneOf`` (see ``_apiframe_request``);
* ``GET /v2/jobs/{id}`` and ``GET /v2/jobs`` answer the job object: ``status``
  ``QUEUED``/``PROCESSING``/``COMPLETED``/``FAILED``/``CANCELLED``, ``progress``,
  ``creditCost`` in credits (0 once failed: the hold went back), ``result.videoUrl``
  or ``result.videos`` (models with several outputs);
* ``GET /v2/jobs?include_models=true`` adds ``models``, every model the caller has
  jobs of (for the list's model filter);
* ``GET /v2/models?modality=video`` is the public catalog with credit ranges.

Keys travel in ``X-API-Key``: the vidgate key itself, or behind Apiframe's ``afk_``
prefix. Job ids are UUIDs (the job id's bijection in ``vidgate.ids``). The
``Idempotency-Key`` header replays the original job (one hold), and a different body
under the same key is 409. Webhooks are rendered here (``render_webhook``) in
Apiframe's shape, signed ``sha256=`` HMAC-SHA256 keyed by the SHA-256 digest of the
API key, which is exactly the hash vidgate stores.

Two facts a webhook needs are not on the job (the credits quoted at submit, at the
catalog entry's credit value, and the number of result slots), so submit records
them in the job's metadata (``apiframe_credits``, ``apiframe_outputs``), and reads
use them too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from vidgate.api.auth import KeyForm, authenticate
from vidgate.api.context import Services, Svc, services
from vidgate.api.dialects._apiframe_catalog import credit_value, model_entry
from vidgate.api.dialects._apiframe_request import NAMESPACE, parse_generate, wire_error
from vidgate.api.dialects.base import Dialect
from vidgate.api.errors import error_headers
from vidgate.api.media import media_links
from vidgate.api.openapi import OBJECT, STRING, STRINGS, json_body, obj
from vidgate.catalog.models import DEFAULT_CREDIT_USD, ModelSpec
from vidgate.catalog.pricing import Quote
from vidgate.clock import iso_ms
from vidgate.domain.job import Job, Principal
from vidgate.domain.states import JobStatus
from vidgate.errors import (
    AuthenticationFailed,
    GatewayError,
    InsufficientFunds,
    InvalidRequest,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    UnknownModel,
)
from vidgate.ids import job_id_from_uuid, job_id_to_uuid, new_id
from vidgate.media.links import MediaLinks
from vidgate.money import MICROS_PER_USD
from vidgate.service.jobs import Idempotency
from vidgate.webhooks.formats import WebhookFormat

PREFIX = "/apiframe"
KEYS = KeyForm(header="x-api-key", prefixes=("afk_",))  # and the plain vidgate key


async def _request_id(response: Response) -> None:
    response.headers["x-request-id"] = new_id("req")


router = APIRouter(tags=["apiframe"], dependencies=[Depends(_request_id)])

META_CREDITS = "apiframe_credits"
META_OUTPUTS = "apiframe_outputs"

STATUS = {
    JobStatus.QUEUED: "QUEUED",
    JobStatus.SUBMITTING: "QUEUED",
    JobStatus.RUNNING: "PROCESSING",
    JobStatus.FETCHING: "PROCESSING",
    JobStatus.SUCCEEDED: "COMPLETED",
    JobStatus.FAILED: "FAILED",
    JobStatus.EXPIRED: "FAILED",
    JobStatus.CANCELED: "CANCELLED",
}
_UNBILLED = ("FAILED", "CANCELLED")
# The outcome of a job's latest webhook delivery -> Apiframe's ``webhookStatus``.
_WEBHOOK_STATUS = {
    "pending": "pending",
    "succeeded": "delivered",
    "failed": "failed",
    "skipped": "failed",
    "canceled": "failed",
}
# vidgate event type -> Apiframe's webhook event (canceled has none in Apiframe).
_EVENT = {
    "video.progress": "progress",
    "video.completed": "completed",
    "video.failed": "failed",
    "video.expired": "failed",
}


# ------------------------------------------------------------------ credits


def credits_of(micros: int, credit_usd: Decimal, *, rounding: str = ROUND_HALF_UP) -> int:
    """Whole credits for an amount of micro-USD at ``credit_usd`` per credit."""
    return int((Decimal(micros) / (credit_usd * MICROS_PER_USD)).quantize(Decimal(1), rounding=rounding))


def quoted_credits(price: Quote, credit_usd: Decimal) -> int:
    return price.credits if price.credits is not None else credits_of(price.micros, credit_usd)


def in_credits(error: InsufficientFunds, credit_usd: Decimal) -> InsufficientFunds:
    """The same refusal, carrying Apiframe's whole-credit amounts (required > available)."""
    return InsufficientFunds(
        error.message,
        required_micros=error.required_micros,
        available_micros=error.available_micros,
        code=error.code,
        credits_required=credits_of(error.required_micros, credit_usd, rounding=ROUND_CEILING),
        credits_available=credits_of(error.available_micros, credit_usd, rounding=ROUND_FLOOR),
    )


# ------------------------------------------------------------------ errors


def render_error(error: GatewayError) -> Response:
    """``{"error": "..."}``, with zod-style ``details`` on 400 and credit amounts on 402."""
    status = 400 if isinstance(error, UnknownModel | ModelUnavailable) else error.status
    body: dict[str, Any] = {"error": error.message}
    if isinstance(error, InsufficientFunds):
        fallback = DEFAULT_CREDIT_USD
        body = {
            "error": "Insufficient credits",
            "creditsRequired": error.extra.get(
                "credits_required", credits_of(error.required_micros, fallback, rounding=ROUND_CEILING)
            ),
            "creditsAvailable": error.extra.get(
                "credits_available", credits_of(error.available_micros, fallback, rounding=ROUND_FLOOR)
            ),
        }
    elif status == 400:
        path = error.param or "body"
        body["details"] = {path: [error.message.removeprefix(f"{path}: ")]}
    headers = {**error_headers(error), "x-request-id": new_id("req")}
    return JSONResponse(body, status_code=status, headers=headers)


# ------------------------------------------------------------------ the job object


@dataclass(frozen=True, slots=True)
class Facts:
    """What the job object shows beyond the job: Apiframe's model name, credits, result slots."""

    model: str
    credits: int
    outputs: int


def facts_of(job: Job, *, spec: ModelSpec | None = None, credit_usd: Decimal = DEFAULT_CREDIT_USD) -> Facts:
    """From the metadata submit recorded; for jobs of other dialects, from the catalog entry."""
    model = job.model.removeprefix(f"{NAMESPACE}/")
    if spec is not None and spec.namespace != NAMESPACE:
        model = spec.id
    stored = job.metadata.get(META_CREDITS, "")
    credits = int(stored) if stored.isdigit() else credits_of(job.estimated_micros, credit_usd)
    slots = job.metadata.get(META_OUTPUTS, "")
    outputs = int(slots) if slots.isdigit() else spec.outputs if spec is not None else 1
    return Facts(model, credits, outputs)


def credit_cost(job: Job, facts: Facts) -> int:
    """Credits the job costs: quoted while it runs, charged once done, 0 after a failure."""
    if STATUS[job.status] in _UNBILLED:
        return 0
    if job.status is JobStatus.SUCCEEDED and job.charged_micros is not None and job.estimated_micros:
        share = Decimal(facts.credits) * job.charged_micros / job.estimated_micros
        return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return facts.credits


def result_of(job: Job, facts: Facts, links: MediaLinks) -> dict[str, Any]:
    """``{"videoUrl"}``, or ``{"videos": [...]}`` with one URL per result slot.

    A model with several outputs whose upstream delivered fewer (the simulator renders
    one) repeats the delivered videos over its slots.
    """
    urls = links.all_videos(job)
    if facts.outputs <= 1:
        return {"videoUrl": urls[0] if urls else None}
    return {"videos": [urls[i % len(urls)] for i in range(facts.outputs)] if urls else []}


def job_object(
    job: Job, facts: Facts, links: MediaLinks, *, webhook_status: str | None = None
) -> dict[str, Any]:
    status = STATUS[job.status]
    done = status == "COMPLETED"
    body: dict[str, Any] = {
        "id": job_id_to_uuid(job.id),
        "status": status,
        "model": facts.model,
        "progress": 100 if done else 0 if status in _UNBILLED else job.progress,
        "result": result_of(job, facts, links) if done else None,
        "error": (job.error_message or status.lower()) if status in _UNBILLED else None,
        "creditCost": credit_cost(job, facts),
        "webhookStatus": webhook_status,
        "createdAt": iso_ms(job.created_at),
        "completedAt": iso_ms(job.completed_at),
        # Required on every JobList item: true once a completed job's media are purged.
        "expired": done and job.media_deleted_at is not None,
    }
    return body


# ------------------------------------------------------------------ requests


async def principal(
    request: Request, x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None
) -> Principal:
    """The caller of ``X-API-Key: afk_<vidgate key>`` or ``X-API-Key: <vidgate key>``."""
    if not x_api_key or not x_api_key.strip():
        raise AuthenticationFailed("API key is required", code="missing_api_key")
    secret = KEYS.secret(x_api_key.strip())
    try:
        found = await authenticate(services(request).db, secret)
    except AuthenticationFailed:
        raise AuthenticationFailed("Invalid API key") from None
    except PermissionDenied:
        raise PermissionDenied("API key is inactive", code="key_inactive") from None
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


def _facts(svc: Services, job: Job) -> Facts:
    spec = svc.catalog.get(job.model) if job.model in svc.catalog else None
    return facts_of(job, spec=spec, credit_usd=credit_value(spec))


async def _webhook_status(svc: Services, job: Job) -> str | None:
    """``pending``/``delivered``/``failed`` from the job's latest own webhook delivery."""
    outcome = await svc.accounts.webhook_outcome(job)
    return None if outcome is None else _WEBHOOK_STATUS.get(outcome, "pending")


async def _shown(svc: Services, job: Job, links: MediaLinks) -> dict[str, Any]:
    return job_object(job, _facts(svc, job), links, webhook_status=await _webhook_status(svc, job))


def _job_id(value: str, param: str) -> str:
    job_id = job_id_from_uuid(value) if len(value) == 36 else None
    if job_id is None:
        raise InvalidRequest(f"{param}: Invalid uuid", param=param)
    return job_id


# ------------------------------------------------------------------ routes


@router.post(
    "/v2/videos/generate",
    status_code=202,
    summary="Generate a video",
    openapi_extra=json_body(
        {
            **obj(["model", "prompt"], model=STRING, prompt=STRING, webhookUrl=STRING, webhookEvents=STRINGS),
            "additionalProperties": {**OBJECT, "description": "the model family's <family>Params block"},
        }
    ),
)
async def generate(
    request: Request,
    caller: Caller,
    svc: Svc,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> dict[str, Any]:
    parsed = parse_generate(await request.body(), svc.catalog)
    credit_usd = credit_value(parsed.spec)
    idem = Idempotency(idempotency_key, NAMESPACE) if idempotency_key else None
    try:
        _, _, price = svc.jobs.prepare(caller, parsed.request)
        recorded = {META_CREDITS: str(quoted_credits(price, credit_usd))}
        if parsed.spec.outputs > 1:
            recorded[META_OUTPUTS] = str(parsed.spec.outputs)
        req = parsed.request.model_copy(update={"metadata": recorded})
        submitted = await svc.jobs.submit(caller, req, dialect=NAMESPACE, idempotency=idem)
    except InsufficientFunds as exc:
        raise in_credits(exc, credit_usd) from None
    except InvalidRequest as exc:
        raise wire_error(exc, parsed.wire_names) from None
    return {"jobId": job_id_to_uuid(submitted.job.id), "status": STATUS[submitted.job.status]}


@router.get("/v2/jobs/{job_uuid}", summary="One job")
async def get_job(job_uuid: str, request: Request, caller: Caller, svc: Svc) -> dict[str, Any]:
    job_id = _job_id(job_uuid, "id")
    try:
        job = await svc.jobs.get(caller, job_id)
    except NotFound:
        raise NotFound("Job not found") from None
    return await _shown(svc, job, media_links(request))


@router.get("/v2/jobs", summary="The caller's jobs, newest first")
async def list_jobs(
    request: Request,
    caller: Caller,
    svc: Svc,
    status: str | None = None,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    scope: Annotated[str | None, Query(pattern="^(user|team)$")] = None,  # noqa: ARG001 (validated; one scope here)
    search: str | None = None,
    include_models: str | None = None,
) -> dict[str, Any]:
    """One page of jobs. With ``include_models=true`` the answer also has ``models``: the
    name of every model the caller has Apiframe jobs of, whatever this page's filters
    (what Apiframe's job list offers its model filter; the OpenAPI gives only the
    parameter, ``"true" | "false"``, and the ``models`` array)."""
    if include_models not in (None, "true", "false"):
        raise InvalidRequest(
            f"include_models: Invalid enum value {include_models!r}; expected 'true' | 'false'",
            param="include_models",
        )
    page = await _jobs_page(request, caller, svc, status, model, limit, cursor, search)
    if include_models == "true":
        used = await svc.jobs.models_used(caller, dialect=NAMESPACE)
        page["models"] = sorted({name.removeprefix(f"{NAMESPACE}/") for name in used})
    return page


async def _jobs_page(
    request: Request,
    caller: Principal,
    svc: Services,
    status: str | None,
    model: str | None,
    limit: int,
    cursor: str | None,
    search: str | None,
) -> dict[str, Any]:
    statuses = None
    if status is not None:
        statuses = [ours.value for ours, theirs in STATUS.items() if theirs == status]
        if not statuses:
            expected = " | ".join(dict.fromkeys(STATUS.values()))
            raise InvalidRequest(
                f"status: Invalid enum value {status!r}; expected {expected}", param="status"
            )
    model_id = None
    if model is not None:
        found = [s for s in svc.catalog.in_namespace(NAMESPACE) if s.name == model]
        if not found:
            return {"jobs": [], "nextCursor": None, "hasMore": False}
        model_id = found[0].id
    links = media_links(request)
    if search is not None:
        hit = await _searched(svc, caller, _job_id(search, "search"))
        keep = (
            hit is not None
            and (statuses is None or hit.status.value in statuses)
            and (model_id is None or hit.model == model_id)
        )
        shown = [await _shown(svc, hit, links)] if hit is not None and keep else []
        return {"jobs": shown, "nextCursor": None, "hasMore": False}
    after = _job_id(cursor, "cursor") if cursor else None
    try:
        page = await svc.jobs.list(
            caller, limit=limit, after=after, status=statuses, model=model_id, dialect=NAMESPACE
        )
    except NotFound:
        raise InvalidRequest("cursor: Invalid cursor", param="cursor") from None
    return {
        "jobs": [await _shown(svc, j, links) for j in page.jobs],
        "nextCursor": job_id_to_uuid(page.jobs[-1].id) if page.has_more and page.jobs else None,
        "hasMore": page.has_more,
    }


async def _searched(svc: Services, caller: Principal, job_id: str) -> Job | None:
    try:
        return await svc.jobs.get(caller, job_id)
    except NotFound:
        return None


@router.get("/v2/models", summary="The public model catalog (no key needed)")
async def list_models(request: Request, modality: str | None = None) -> dict[str, Any]:
    if modality not in (None, "video"):
        return {"models": []}
    svc = services(request)
    return {"models": [model_entry(spec) for spec in svc.catalog.in_namespace(NAMESPACE)]}


# ------------------------------------------------------------------ webhooks


def render_webhook(
    job: Job, event_type: str, links: MediaLinks, key_secret_hash: str
) -> tuple[bytes, dict[str, str]] | None:
    """Apiframe's webhook for ``event_type``, or None when the job did not subscribe to it.

    Signed ``X-Webhook-Signature: sha256=<hex>``: HMAC-SHA256 keyed by the SHA-256
    digest bytes of the API key (``key_secret_hash`` is that digest, hex) over the body.
    """
    event = _EVENT.get(event_type)
    subscribed = job.request.webhook_events
    if event is None or not job.request.webhook_url or subscribed is None or event_type not in subscribed:
        return None
    facts = facts_of(job)
    body: dict[str, Any] = {"event": event, "jobId": job_id_to_uuid(job.id)}
    if event == "progress":
        body.update(status="PROCESSING", progress=job.progress, model=facts.model)
    elif event == "completed":
        body.update(
            status="COMPLETED",
            progress=100,
            result=result_of(job, facts, links),
            model=facts.model,
            creditCost=credit_cost(job, facts),
            completedAt=iso_ms(job.completed_at),
        )
    else:
        body.update(status="FAILED", error=job.error_message or "failed", model=facts.model)
    raw = json.dumps(body, separators=(",", ":")).encode()
    digest = hmac.new(bytes.fromhex(key_secret_hash), raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Event": event,
        "X-Webhook-Signature": f"sha256={digest}",
    }
    return raw, headers


DIALECT = Dialect(
    name=NAMESPACE,
    prefix=PREFIX,
    router=router,
    render_error=render_error,
    keys=KEYS,
    webhook=WebhookFormat(render_webhook),
    # /v2/ clashes with nothing at the root, so it is served there too (the Node SDK drops base paths).
    root_paths=("/v2/",),
    job_ids=lambda job_uuid: tuple(filter(None, [job_id_from_uuid(job_uuid)])),
)
