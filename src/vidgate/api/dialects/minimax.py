"""MiniMax Hailuo video API as Taam Cloud documents it (seed 002), mounted at ``/minimax``.

A MiniMax client sets its base URL to ``http://HOST/minimax`` and keeps its code:

* ``POST /v1/video_generation`` creates a task: ``{"task_id", "base_resp"}``;
* ``GET /v1/query/video_generation?task_id=`` answers ``Preparing``, ``Queueing``,
  ``Processing``, ``Success`` (with a ``file_id`` and the frame size) or ``Fail``;
* ``GET /v1/files/retrieve?file_id=`` answers the file with a ``download_url``, which
  is vidgate's own signed URL (``/v1/files/retrieve_content`` streams the bytes).

Ids are numeric strings that fit in int64, like MiniMax's (``_minimax_ids``): the
job id carries the task number, the ``file_id`` is that number under a fixed mask,
so both lead back to the job without a table. Resolutions travel as ``768P`` and are
lower-cased for the catalog; ``[camera move]`` commands stay in the prompt untouched.
A failed task's query answers ``base_resp`` 0 (the query worked), ``status: "Fail"``
and the reason in ``error_message`` (its MiniMax code in ``error_code``).

Every error carries both envelopes, MiniMax's ``base_resp`` and Taam's ``error``,
under Taam's HTTP status at ``/minimax``; the same API at ``/minimax-native`` answers
errors as native MiniMax does, HTTP 200 with the code in ``base_resp``
(``_minimax_errors``). Submit-time upstream refusals are answered at create, as
MiniMax does (``wait_for_ack``). ``callback_url`` subscribes the job to pushes in the
query-response shape, after MiniMax's challenge handshake (``webhook_handshake``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from vidgate.api.auth import authenticate, bearer_token
from vidgate.api.context import Services, Svc, services
from vidgate.api.dialects import _minimax_ids as ids
from vidgate.api.dialects._minimax_errors import CODE_OF, render_error, render_native_error
from vidgate.api.dialects.base import Dialect
from vidgate.api.media import media_links, range_response
from vidgate.api.openapi import json_body, media_response
from vidgate.clock import unix
from vidgate.domain.job import Job, Principal
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.domain.states import JobStatus
from vidgate.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    UpstreamFailed,
)
from vidgate.media.links import MediaLinks, media_key
from vidgate.webhooks.formats import WebhookFormat

PREFIX = "/minimax"
NATIVE_PREFIX = "/minimax-native"
DIALECT_NAME = "minimax"
router = APIRouter(tags=["minimax"])

ACK_TIMEOUT_S = 5.0  # how long create waits for the upstream's acknowledgement
FILENAME = "output_aigc.mp4"
_OK = {"status_code": 0, "status_msg": "success"}

# Push status per vidgate event type; MiniMax documents processing/success/failed pushes.
_PUSHED = {
    "video.progress": "Processing",
    "video.completed": "Success",
    "video.failed": "Fail",
    "video.expired": "Fail",
    "video.canceled": "Fail",
}


# ------------------------------------------------------------------ ids


def task_id(job: Job) -> str:
    return ids.task_id(job.id)


def file_id(job: Job) -> str:
    return ids.file_id(job.id)


# ------------------------------------------------------------------ wire shapes


class SubjectReference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: StrictStr = "character"
    image: list[StrictStr]


class CreateTask(BaseModel):
    """The create body; fields MiniMax has and vidgate does not model are passed on."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    prompt: StrictStr | None = None
    prompt_optimizer: StrictBool | None = None
    fast_pretreatment: StrictBool | None = None
    first_frame_image: StrictStr | None = None
    last_frame_image: StrictStr | None = None
    subject_reference: list[SubjectReference] | None = None
    duration: StrictInt | None = None
    resolution: StrictStr | None = None
    callback_url: StrictStr | None = None
    aigc_watermark: StrictBool | None = None


_PASSED_ON = ("prompt_optimizer", "fast_pretreatment", "aigc_watermark")


def status_word(job: Job) -> str:
    """The job's state in MiniMax's words (Preparing -> Queueing -> Processing -> Success | Fail)."""
    if job.status in (JobStatus.QUEUED, JobStatus.SUBMITTING):
        return "Preparing"
    if job.status is JobStatus.RUNNING and job.progress == 0:
        return "Queueing"
    if job.status in (JobStatus.RUNNING, JobStatus.FETCHING):
        return "Processing"
    return "Success" if job.status is JobStatus.SUCCEEDED else "Fail"


def task_object(job: Job) -> dict[str, Any]:
    """The query response (and the push body) for a job.

    ``base_resp`` is the status of the query itself, so it is 0 for a failed task
    too (MiniMax's client checks it before reading ``status``); why the task failed
    is in ``error_message``, with its MiniMax code in ``error_code``.
    """
    word = status_word(job)
    body: dict[str, Any] = {"task_id": task_id(job), "status": word, "file_id": ""}
    if word == "Success" and job.media is not None:
        body.update(file_id=file_id(job), video_width=job.media.width, video_height=job.media.height)
    if word == "Fail":
        body["error_code"] = CODE_OF.get(job.error_code or "", 1000)
        body["error_message"] = job.error_message or f"the task ended {job.status.value}"
    body["base_resp"] = dict(_OK)
    return body


def file_object(job: Job, links: MediaLinks) -> dict[str, Any]:
    url = links.url(job, "video")
    if url is None or job.media is None:
        raise NotFound(f"file {file_id(job)} not found (deleted or expired)", param="file_id")
    return {
        "file": {
            "file_id": file_id(job),
            "bytes": job.media.bytes,
            "created_at": unix(job.completed_at or job.created_at),
            "filename": FILENAME,
            "purpose": "video_generation",
            "download_url": url,
        },
        "base_resp": dict(_OK),
    }


# ------------------------------------------------------------------ requests


async def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    found = await authenticate(services(request).db, bearer_token(authorization))
    request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


async def _read_create(request: Request) -> CreateTask:
    raw = await request.body()
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return CreateTask.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidRequest("the request body is not valid JSON") from None
        param = ".".join(str(p) for p in first["loc"]) or None
        if first["type"] == "missing":
            raise InvalidRequest(f"{param} is required", param=param) from None
        raise InvalidRequest(f"{param}: {first['msg']}", param=param) from None


def to_request(svc: Services, body: CreateTask) -> GenerationRequest:
    spec = svc.catalog.resolve(DIALECT_NAME, body.model)
    images: list[ImageInput] = []
    if body.first_frame_image:
        images.append(ImageInput(url=body.first_frame_image, role="first_frame"))
    if body.last_frame_image:
        images.append(ImageInput(url=body.last_frame_image, role="last_frame"))
    if body.subject_reference is not None and len(body.subject_reference) > 1:
        raise InvalidRequest("subject_reference takes one subject only", param="subject_reference")
    expected_type = str(spec.dialect.get("subject_reference_type", "character"))
    for subject in body.subject_reference or ():
        if subject.type != expected_type:
            raise InvalidRequest(
                f"subject_reference.type {subject.type!r} is not supported; use {expected_type!r}",
                param="subject_reference",
            )
        if len(subject.image) != 1:
            raise InvalidRequest(
                "subject_reference.image takes exactly one image URL", param="subject_reference"
            )
        images.append(ImageInput(url=subject.image[0], role="reference"))
    passed_on = {name: getattr(body, name) for name in _PASSED_ON if getattr(body, name) is not None}
    return GenerationRequest(
        model=spec.id,
        prompt=body.prompt or "",
        duration_s=body.duration,
        resolution=body.resolution.lower() if body.resolution is not None else None,
        images=tuple(images),
        provider_options=passed_on,
        webhook_url=body.callback_url,
    )


def _refusal(job: Job) -> GatewayError | None:
    """The error to answer create with when the upstream refused the task at submit."""
    if job.status is not JobStatus.FAILED:
        return None
    message = job.error_message or "the upstream refused the task"
    if job.error_code in ("content_policy_violation", "upstream_rejected"):
        return InvalidRequest(message, code=job.error_code)
    status = 504 if job.error_code == "upstream_timeout" else 502
    return UpstreamFailed(message, status=status, request_id=job.upstream_request_id)


async def _job_of_task(svc: Services, caller: Principal, value: str) -> Job:
    job_id = ids.job_id_of_task(value.strip())
    if job_id is None:
        raise InvalidRequest(f"task_id {value!r} is not a task id (a numeric string)", param="task_id")
    try:
        return await svc.jobs.get(caller, job_id)
    except NotFound:
        raise NotFound(f"task {value} not found", param="task_id") from None


async def _job_of_file(svc: Services, caller: Principal, value: str) -> Job:
    job_id = ids.job_id_of_file(value.strip())
    if job_id is None:
        raise InvalidRequest(f"file_id {value!r} is not a file id (a numeric string)", param="file_id")
    try:
        job = await svc.jobs.get(caller, job_id)
    except NotFound:
        raise NotFound(f"file {value} not found", param="file_id") from None
    if job.status is not JobStatus.SUCCEEDED:
        raise NotFound(f"file {value} not found", param="file_id")
    return job


# ------------------------------------------------------------------ routes


@router.post(
    "/v1/video_generation", summary="Create a video generation task", openapi_extra=json_body(CreateTask)
)
async def create_task(request: Request, caller: Caller, svc: Svc) -> dict[str, Any]:
    body = await _read_create(request)
    submitted = await svc.jobs.submit(
        caller, to_request(svc, body), dialect=DIALECT_NAME, job_id=ids.new_job_id()
    )
    job = await svc.jobs.wait_for_ack(submitted.job, timeout_s=ACK_TIMEOUT_S)
    refusal = _refusal(job)
    if refusal is not None:
        raise refusal
    return {"task_id": task_id(job), "base_resp": dict(_OK)}


@router.get("/v1/query/video_generation", summary="Query a video generation task")
async def query_task(task_id: Annotated[str, Query()], caller: Caller, svc: Svc) -> dict[str, Any]:
    return task_object(await _job_of_task(svc, caller, task_id))


@router.get("/v1/files/retrieve", summary="A generated file and its download URL")
async def retrieve_file(
    file_id: Annotated[str, Query()], request: Request, caller: Caller, svc: Svc
) -> dict[str, Any]:
    job = await _job_of_file(svc, caller, file_id)
    return file_object(job, media_links(request))


@router.api_route(
    "/v1/files/retrieve_content",
    methods=["GET", "HEAD"],
    summary="The bytes of a generated file",
    responses=media_response("video/mp4", "image/jpeg"),
)
async def retrieve_content(
    file_id: Annotated[str, Query()], request: Request, caller: Caller, svc: Svc
) -> Response:
    job = await _job_of_file(svc, caller, file_id)
    key = media_key(job, "video")
    if key is None:
        raise NotFound(f"file {file_id} not found (deleted or expired)", param="file_id")
    return await range_response(
        svc.storage, key, request=request, content_type="video/mp4", filename=FILENAME
    )


# ------------------------------------------------------------------ push


def webhook_handshake(url: str) -> tuple[bytes, Callable[[bytes], bool]]:  # noqa: ARG001 (hook signature)
    """MiniMax's check before the first push: POST a challenge, expect it echoed."""
    challenge = secrets.token_urlsafe(24)
    body = json.dumps({"challenge": challenge}).encode()

    def echoed(reply: bytes) -> bool:
        try:
            answer = json.loads(reply)
        except ValueError:
            return False
        return isinstance(answer, dict) and answer.get("challenge") == challenge

    return body, echoed


def render_webhook(
    job: Job,
    event_type: str,
    links: MediaLinks,  # noqa: ARG001 (the WebhookFormat signature; pushes carry file ids, not links)
    key_secret_hash: str,  # noqa: ARG001 (MiniMax signs nothing)
) -> tuple[bytes, dict[str, str]] | None:
    """A push in the query-response shape (MiniMax signs nothing)."""
    word = _PUSHED.get(event_type)
    if word is None or not job.request.webhook_url:
        return None
    if word == "Processing":
        body: dict[str, Any] = {
            "task_id": task_id(job),
            "status": word,
            "file_id": "",
            "base_resp": dict(_OK),
        }
    else:
        body = task_object(job)
    return json.dumps(body, separators=(",", ":")).encode(), {"Content-Type": "application/json"}


DIALECT = Dialect(
    name=DIALECT_NAME,
    prefix=PREFIX,
    router=router,
    render_error=render_error,
    webhook=WebhookFormat(render_webhook, webhook_handshake),
    job_ids=lambda number: tuple(filter(None, [ids.job_id_of_task(number), ids.job_id_of_file(number)])),
)
# The same API with native MiniMax's error semantics: HTTP 200, the code in base_resp.
# Its jobs are MiniMax jobs like any other (recorded as "minimax", pushed the same way).
NATIVE_DIALECT = Dialect(
    name="minimax-native", prefix=NATIVE_PREFIX, router=router, render_error=render_native_error
)
