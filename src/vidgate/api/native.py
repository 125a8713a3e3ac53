"""The native API at ``/v1``: the OpenAI Videos API as the ``openai`` SDK speaks it,
extended with gateway fields, models, quotes and the account's ledger."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from vidgate.api.auth import authenticate, bearer_token
from vidgate.api.context import Services, Svc, services
from vidgate.api.media import CONTENT_TYPES, media_links, range_response
from vidgate.api.native_schema import (
    CreateVideo,
    QuoteRequest,
    RemixVideo,
    parse_seconds,
    parse_size,
)
from vidgate.api.openapi import (
    error_responses,
    header_parameters,
    json_body,
    media_response,
    video_responses,
)
from vidgate.api.waiting import (
    IF_NONE_MATCH_DESCRIPTION,
    PREFER_DESCRIPTION,
    applied,
    etag,
    not_modified,
    prefer_wait,
    waited_create,
    waited_retrieve,
)
from vidgate.catalog.validation import allowed_values
from vidgate.domain.job import Job, Principal
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.errors import InvalidRequest, NotFound
from vidgate.media.links import media_key
from vidgate.media.probe import check_image
from vidgate.money import format_usd
from vidgate.service.accounts import LedgerEntry
from vidgate.service.jobs import Idempotency
from vidgate.service.video_object import video_object

router = APIRouter(prefix="/v1", tags=["videos"])
MAX_IMAGE_BYTES = 20_000_000


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    found = await authenticate(services(request).db, bearer_token(authorization))
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


def _poll_after(job: Job) -> dict[str, str]:
    """``openai-poll-after-ms``: how soon the SDK's poller should look again."""
    if job.terminal:
        return {}
    eta = job.eta_s
    millis = 1000 if eta is None else int(min(10.0, max(0.5, eta / 2)) * 1000)
    return {"openai-poll-after-ms": str(millis)}


def _video_response(request: Request, job: Job, headers: dict[str, str] | None = None) -> Response:
    """The video object, serialised once (no response-model validation of our own output)."""
    return JSONResponse(
        video_object(job, media_links(request)), headers={**_poll_after(job), **(headers or {})}
    )


async def _read_create(request: Request) -> CreateVideo:
    """The create body, from JSON or from a multipart form (``input_reference`` file)."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            fields: dict[str, Any] = {}
            # ``async with``: the spooled upload files are closed however this ends.
            async with request.form(max_part_size=MAX_IMAGE_BYTES + 1024) as form:
                for name, value in form.multi_items():
                    if isinstance(value, str):
                        fields[name] = (
                            json.loads(value)
                            if name in ("metadata", "options", "provider_options")
                            else value
                        )
                    elif name == "input_reference":
                        data = await value.read(MAX_IMAGE_BYTES + 1)
                        fields["image_url"] = _data_url(data)
                    else:
                        raise InvalidRequest(f"unexpected file field {name!r}", param=name)
            return CreateVideo.model_validate(fields)
        raw = await request.body()
        if not raw:
            raise InvalidRequest("the request body is empty; send JSON or a multipart form")
        return CreateVideo.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        if first["type"] == "json_invalid":
            raise InvalidRequest("the request body is not valid JSON") from None
        if first["type"] == "extra_forbidden":
            raise InvalidRequest(f"unknown field {param!r}", param=param, code="unknown_parameter") from None
        raise InvalidRequest(f"{param}: {first['msg']}", param=param) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body could not be read: {exc}") from None


def _data_url(data: bytes) -> str:
    try:
        kind, _, _ = check_image(data, max_bytes=MAX_IMAGE_BYTES)
    except ValueError as exc:
        raise InvalidRequest(f"input_reference: {exc}", param="input_reference") from None
    mime = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}.get(
        kind.lower(), "image/png"
    )
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def to_request(svc: Services, body: CreateVideo) -> GenerationRequest:
    spec = svc.catalog.get(body.model)
    duration = body.duration if body.duration is not None else parse_seconds(body.seconds)
    resolution, aspect = body.resolution, body.aspect_ratio
    if body.size:
        resolution, aspect = parse_size(body.size, spec)
        for name, given, implied in (
            ("resolution", body.resolution, resolution),
            ("aspect_ratio", body.aspect_ratio, aspect),
        ):
            if given is not None and given.strip().lower() != (implied or "").lower():
                raise InvalidRequest(
                    f"{name} {given!r} contradicts size {body.size!r} (which is {implied or 'the default'});"
                    f" send one of them",
                    param=name,
                )
    images = []
    if body.image_url:
        images.append(ImageInput(url=body.image_url, role="first_frame"))
    if body.last_frame_url:
        images.append(ImageInput(url=body.last_frame_url, role="last_frame"))
    images += [ImageInput(url=u, role="reference") for u in body.reference_image_urls]
    return GenerationRequest(
        model=spec.id,
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        duration_s=duration,
        resolution=resolution,
        aspect_ratio=aspect,
        images=tuple(images),
        audio=body.audio,
        seed=body.seed,
        options=dict(body.options),
        provider_options=body.provider_options,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
    )


@router.post(
    "/videos",
    status_code=200,
    response_model=dict[str, Any],
    summary="Create a video",
    openapi_extra=json_body(CreateVideo, multipart=True),
    responses=error_responses(
        {402: "The balance or a key's spend cap cannot cover the hold", 409: "Idempotency-Key reused"}
    ),
)
async def create_video(
    request: Request,
    caller: Caller,
    svc: Svc,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    prefer: Annotated[list[str] | None, Header(description=PREFER_DESCRIPTION)] = None,
) -> Response:
    body = await _read_create(request)
    idem = Idempotency(idempotency_key, "native") if idempotency_key else None
    submitted = await svc.jobs.submit(caller, to_request(svc, body), dialect="native", idempotency=idem)
    wait_s = prefer_wait(prefer or ())
    job = await waited_create(svc.jobs, svc.lifecycle.changes, caller, submitted.job, wait_s=wait_s)
    headers = applied(wait_s) | {"ETag": etag(job)}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    return _video_response(request, job, headers)


@router.get("/videos", summary="List videos")
async def list_videos(
    request: Request,
    caller: Caller,
    svc: Svc,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
) -> dict[str, Any]:
    page = await svc.jobs.list(caller, limit=limit, after=after, newest_first=order == "desc")
    links = media_links(request)
    data = [video_object(job, links) for job in page.jobs]
    return {
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


@router.get(
    "/videos/{video_id}",
    summary="Retrieve a video",
    response_model=None,
    responses=video_responses(),
    openapi_extra=header_parameters(
        authorization=None, prefer=PREFER_DESCRIPTION, if_none_match=IF_NONE_MATCH_DESCRIPTION
    ),
)
async def retrieve_video(video_id: str, request: Request) -> Response:
    # The poll, by far the most frequent call: its headers are read here rather than
    # declared as parameters, which FastAPI would validate one by one on every request
    # (they are documented through ``openapi_extra`` all the same).
    headers = request.headers
    svc = services(request)
    caller = await principal(request, headers.get("authorization"))
    wait_s = prefer_wait(headers.getlist("prefer"))
    job, unchanged = await waited_retrieve(
        svc.jobs,
        svc.lifecycle.changes,
        caller,
        video_id,
        wait_s=wait_s,
        if_none_match=headers.get("if-none-match"),
    )
    if unchanged:
        return not_modified(job, _poll_after(job) | applied(wait_s))
    return _video_response(request, job, applied(wait_s) | {"ETag": etag(job)})


@router.delete("/videos/{video_id}", summary="Delete a video and its media")
async def delete_video(video_id: str, caller: Caller, svc: Svc) -> dict[str, Any]:
    await svc.jobs.mark_deleted(caller, video_id)
    return {"id": video_id, "object": "video.deleted", "deleted": True}


@router.post(
    "/videos/{video_id}/cancel",
    summary="Cancel a running video (releases its hold)",
    responses=error_responses({409: "The video has already ended"}),
)
async def cancel_video(video_id: str, request: Request, caller: Caller, svc: Svc) -> dict[str, Any]:
    return video_object(await svc.jobs.cancel(caller, video_id), media_links(request))


@router.post(
    "/videos/{video_id}/remix",
    summary="A new video from the same settings and a new prompt",
    responses=error_responses({402: "The balance or a key's spend cap cannot cover the hold"}),
)
async def remix_video(
    video_id: str, body: RemixVideo, request: Request, caller: Caller, svc: Svc
) -> dict[str, Any]:
    source = await svc.jobs.get(caller, video_id)
    req = source.request.model_copy(update={"prompt": body.prompt})
    submitted = await svc.jobs.submit(caller, req, dialect="native", remixed_from=source.id)
    return video_object(submitted.job, media_links(request))


@router.api_route(
    "/videos/{video_id}/content",
    methods=["GET", "HEAD"],
    summary="Download the video or its thumbnail",
    responses=media_response("video/mp4", "image/jpeg"),
)
async def video_content(
    video_id: str,
    request: Request,
    caller: Caller,
    svc: Svc,
    variant: Annotated[str, Query(pattern="^(video|thumbnail|spritesheet)$")] = "video",
) -> Response:
    job = await svc.jobs.get(caller, video_id)
    if variant == "spritesheet":
        raise NotFound("spritesheets are not produced by vidgate; use variant=thumbnail", param="variant")
    key = media_key(job, variant)
    if key is None:
        if not job.terminal:
            raise NotFound(
                f"video {video_id} is still {job.status.value}; content is not ready",
                code="not_ready",
            )
        raise NotFound(f"video {video_id} has no {variant} (status {job.status.value})")
    return await range_response(
        svc.storage,
        key,
        request=request,
        content_type=CONTENT_TYPES[variant],
        filename=f"{video_id}.{'mp4' if variant == 'video' else 'jpg'}",
    )


# ------------------------------------------------------------------ catalog


def model_object(svc: Services, spec: Any) -> dict[str, Any]:
    reason = (
        spec.unavailable_reason
        if not spec.orderable
        else svc.pool.unavailable_reason(spec, svc.routes.cached(spec))
    )
    return {
        "id": spec.id,
        "object": "model",
        "owned_by": spec.vendor,
        "label": spec.label,
        "namespace": spec.namespace,
        "name": spec.name,
        "description": spec.description,
        "modes": list(spec.modes),
        "orderable": spec.orderable,
        "available_live": spec.orderable and reason is None,
        "unavailable_reason": reason,
        "constraints": {
            **allowed_values(spec),
            "prompt_max": spec.prompt_max,
            "prompt_required": spec.prompt_required,
            "image": spec.image,
            "last_frame": spec.last_frame,
            "reference_images_max": spec.reference_images_max,
            "negative_prompt": spec.negative_prompt,
            "durations_by_resolution": {k: list(v) for k, v in spec.durations_by_resolution.items()},
            "outputs": spec.outputs,
        },
        "defaults": {
            "duration": spec.default_duration,
            "resolution": spec.default_resolution,
            "aspect_ratio": spec.default_aspect_ratio,
            "audio": spec.default_audio,
            "options": spec.option_defaults,
        },
        "price": spec.price.model_dump(mode="json") if spec.price else None,
        "routes": [r.provider for r in spec.routes],
    }


@router.get("/models", tags=["catalog"], summary="The model catalog with each model's constraints")
async def list_models(request: Request, namespace: str | None = None) -> dict[str, Any]:
    svc = services(request)
    specs = svc.catalog.in_namespace(namespace) if namespace else svc.catalog.all()
    return {"object": "list", "data": [model_object(svc, s) for s in specs]}


@router.get("/models/{model_id:path}", tags=["catalog"], summary="One model")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    svc = services(request)
    return model_object(svc, svc.catalog.get(model_id))


@router.post("/quotes", tags=["billing"], summary="Price a job without creating it")
async def create_quote(body: QuoteRequest, caller: Caller, svc: Svc) -> dict[str, Any]:
    spec, req, price = svc.jobs.prepare(caller, _pricing_only(svc, to_request(svc, body)))
    balance = await svc.accounts.balance(caller)
    return {
        "object": "quote",
        "model": spec.id,
        "currency": "usd",
        "amount": format_usd(price.micros),
        "amount_micros": price.micros,
        "credits": price.credits,
        "rule": price.rule,
        "variant": price.variant,
        "breakdown": [{"label": line.label, "amount": format_usd(line.micros)} for line in price.lines],
        "duration": req.duration_s,
        "resolution": req.resolution,
        "aspect_ratio": req.aspect_ratio,
        "audio": req.audio,
        "balance": format_usd(balance.available_micros),
        "sufficient": balance.available_micros >= price.micros,
        "mode": caller.mode,
    }


QUOTE_PLACEHOLDER_IMAGE = "https://quote.invalid/frame.png"  # never fetched: a quote only prices


def _pricing_only(svc: Services, req: GenerationRequest) -> GenerationRequest:
    """A quote needs the pricing inputs only: stand-ins for a missing prompt or input image."""
    spec = svc.catalog.get(req.model)
    updates: dict[str, Any] = {}
    if not req.prompt.strip():
        updates["prompt"] = "quote"
    roles = {image.role for image in req.images}
    if spec.requires_image and "first_frame" not in roles:
        updates["images"] = (*req.images, ImageInput(url=QUOTE_PLACEHOLDER_IMAGE, role="first_frame"))
    return req.model_copy(update=updates) if updates else req


# ------------------------------------------------------------------ account


@router.get("/account", tags=["billing"], summary="Balance, held amount and limits")
async def get_account(caller: Caller, svc: Svc) -> dict[str, Any]:
    try:
        view = await svc.accounts.view(caller)
    except LookupError:
        raise NotFound("this account or key no longer exists") from None
    balance = view.balance
    return {
        "object": "account",
        "id": view.account_id,
        "name": view.name,
        "mode": caller.mode,
        "currency": "usd",
        "balance": format_usd(balance.available_micros),
        "held": format_usd(balance.held_micros),
        "balance_micros": balance.available_micros,
        "held_micros": balance.held_micros,
        "webhook_secret": view.webhook_secret,
        "limits": {
            "rate_limit_per_minute": view.rate_limit_per_minute or svc.settings.rate_limit_per_minute,
            "key_spend_cap_daily": format_usd(view.spend_cap_daily_micros)
            if view.spend_cap_daily_micros is not None
            else None,
            "key_spend_cap_total": format_usd(view.spend_cap_total_micros)
            if view.spend_cap_total_micros is not None
            else None,
            "key_spent_total": format_usd(view.spent_total_micros),
        },
        "key": {"id": view.key_id, "prefix": view.key_prefix, "mode": view.key_mode},
    }


def ledger_entry(entry: LedgerEntry) -> dict[str, Any]:
    """One ledger entry at the wire edge (native and admin APIs alike)."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "amount": format_usd(entry.amount_micros),
        "held_change": format_usd(entry.held_delta_micros),
        "amount_micros": entry.amount_micros,
        "held_change_micros": entry.held_delta_micros,
        "job_id": entry.job_id,
        "key_id": entry.key_id,
        "memo": entry.memo,
        "created_at": entry.created_at.isoformat(),
    }


@router.get("/account/ledger", tags=["billing"], summary="Ledger entries, newest first, paged")
async def get_ledger(
    caller: Caller,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    page = await svc.accounts.ledger_page(caller, limit=limit, before=before, job_id=job_id)
    return {
        "object": "list",
        "data": [ledger_entry(e) for e in page.entries],
        "has_more": page.has_more,
        "next_before": page.next_before,
    }
