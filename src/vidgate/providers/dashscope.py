"""Alibaba Cloud Model Studio / DashScope adapter for the Wan video models.

Wire facts (specs/upstream-protocols.md §9, dashscope SDK and Alibaba's API reference):

- ``Authorization: Bearer <key>`` and ``X-DashScope-Async: enable`` (video is async only).
  The model, endpoint (region) and key must belong to the same region.
- ``POST /api/v1/services/aigc/video-generation/video-synthesis`` for text-, image- and
  reference-to-video; ``.../aigc/image2video/video-synthesis`` for first+last-frame
  models (name contains ``kf2v``). Body ``{"model", "input": {...}, "parameters": {...}}``.
- Text-to-video sizes are ``parameters.size`` as ``W*H`` (``1280*720``); image models take
  ``input.img_url`` (kf2v: ``first_frame_url`` / ``last_frame_url``) and
  ``parameters.resolution`` as ``480P|720P|1080P``; ``duration`` and ``seed`` are integers.
- Pass-through controls given at the top level under DashScope's or a dialect's name
  (``prompt_extend`` / ``enable_prompt_expansion``, ``audio_url`` / Apiframe's ``audio``
  URL) are moved to ``parameters.prompt_extend`` and ``input.audio_url``: DashScope reads
  only ``model``, ``input`` and ``parameters``, and would ignore them where they came.
  Both names of one field are moved; if they disagree the job is refused before
  anything is sent (no name silently wins).
- wan2.6 models take ``parameters.shot_type`` ``single|multi`` (the ``shot_type``
  option); ``multi`` works only with ``parameters.prompt_extend`` true, so it is sent
  with it. Other models make one shot, and a multi-shot job for one is refused.
- The answer is ``{"output": {"task_id", "task_status"}, "request_id"}``.
- ``GET /api/v1/tasks/{task_id}``: ``task_status`` is ``PENDING | RUNNING | SUCCEEDED |
  FAILED | CANCELED | UNKNOWN`` (UNKNOWN: the task expired or does not exist);
  ``output.video_url`` lives 24 h; a failure carries ``output.code`` / ``output.message``.
- ``POST /api/v1/tasks/{task_id}/cancel`` works on PENDING tasks only.
- Errors: ``{"request_id", "code", "message"}``; ``DataInspectionFailed`` is a content
  refusal, ``Throttling*`` a rate limit, ``InvalidApiKey`` / ``AccessDenied`` /
  ``Arrearage`` are the operator's problem.

No callbacks exist in this HTTP API, so this adapter only polls.
UNCONFIRMED: ``parameters.audio`` (wan2.5+ automatic audio switch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from vidgate.domain.request import GenerationRequest
from vidgate.providers import usage
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    JSON,
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
    UpstreamRateLimited,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    state_for,
)
from vidgate.providers.http import accepted_id, deep_merge, dig, expect_dict, merge_under, request_json

log = logging.getLogger(__name__)

VIDEO_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
KF2V_PATH = "/api/v1/services/aigc/image2video/video-synthesis"
# Top-level pass-through names -> (section, DashScope field, value type). DashScope's own
# names first; then Apiframe's wanParams names (``audio`` there is an audio file's URL).
_PLACES: Mapping[str, tuple[str, str, type]] = {
    "prompt_extend": ("parameters", "prompt_extend", bool),
    "enable_prompt_expansion": ("parameters", "prompt_extend", bool),
    "audio_url": ("input", "audio_url", str),
    "audio": ("input", "audio_url", str),
}
# Models that take ``parameters.shot_type`` (``single`` | ``multi``): the wan2.6 series.
SHOT_MODELS = ("wan2.6-",)

State = Literal["queued", "running", "succeeded", "failed", "canceled"]
_STATES: Mapping[str, State] = {
    "PENDING": "queued",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
}

# (resolution, aspect ratio) -> text-to-video ``size`` in DashScope's ``W*H`` form.
_SIZES: Mapping[tuple[str, str], str] = {
    ("480p", "16:9"): "832*480",
    ("480p", "9:16"): "480*832",
    ("480p", "1:1"): "624*624",
    ("720p", "16:9"): "1280*720",
    ("720p", "9:16"): "720*1280",
    ("720p", "1:1"): "960*960",
    ("720p", "4:3"): "1088*832",
    ("720p", "3:4"): "832*1088",
    ("1080p", "16:9"): "1920*1080",
    ("1080p", "9:16"): "1080*1920",
    ("1080p", "1:1"): "1440*1440",
    ("1080p", "4:3"): "1632*1248",
    ("1080p", "3:4"): "1248*1632",
}


def wan_size(resolution: str | None, aspect_ratio: str | None) -> str | None:
    """The ``W*H`` size for a text-to-video request, or None when there is no match."""
    return _SIZES.get(((resolution or "720p").lower(), aspect_ratio or "16:9"))


def error_for_code(
    code: str | None, message: str, *, status: int | None = None, request_id: str | None = None
) -> UpstreamError | None:
    """The error a DashScope ``code`` means, or None when the code says nothing special."""
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id}
    if not code:
        return None
    if code.startswith("DataInspection"):
        return UpstreamContentPolicy(message, **kwargs)
    if code.startswith("Throttling"):
        return UpstreamRateLimited(message, **kwargs)
    if code in ("InvalidApiKey", "Arrearage") or code.startswith("AccessDenied"):
        return UpstreamAuthError(message, **kwargs)
    return None


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    if not isinstance(body, dict) or status == 429 or status >= 500:
        return None  # the default mapping keeps Retry-After
    code, text = body.get("code"), body.get("message")
    code = code if isinstance(code, str) else None
    rid = body.get("request_id") if isinstance(body.get("request_id"), str) else request_id
    message = f"{code}: {text}" if code and isinstance(text, str) else (code or f"HTTP {status}")
    specific = error_for_code(code, message, status=status, request_id=rid)
    if specific is not None:
        return specific
    if status not in (401, 403, 408):
        return UpstreamRejected(message, status_code=status, request_id=rid)
    return None


def _inputs(req: GenerationRequest, *, kf2v: bool) -> JSON:
    """``input``: the prompt, and the frames in the field the model family reads."""
    inputs: JSON = {}
    if req.prompt:
        inputs["prompt"] = req.prompt
    if req.negative_prompt:
        inputs["negative_prompt"] = req.negative_prompt
    first, last = req.first_frame, req.last_frame
    if kf2v:
        if first:
            inputs["first_frame_url"] = first
        if last:
            inputs["last_frame_url"] = last
    elif first:
        inputs["img_url"] = first
    if req.reference_images:
        log.info("dashscope: reference images are not mapped; leaving them out")
    return inputs


def _shots(req: GenerationRequest, model: str) -> JSON:
    """``shot_type`` for the ``shot_type`` option: wan2.6 models only, and a multi-shot
    video also needs ``prompt_extend`` (Wan plans the shots while it rewrites the prompt,
    and ignores ``shot_type`` without it)."""
    shot = req.options.get("shot_type")
    if shot is None:
        return {}
    if not model.startswith(SHOT_MODELS):
        if shot == "multi":
            raise UpstreamRejected(f"{model} makes single-shot videos only; multi-shot needs wan2.6")
        return {}  # every other Wan model makes one shot
    return {"shot_type": shot, "prompt_extend": True} if shot == "multi" else {"shot_type": shot}


def _placed(passed_on: dict[str, Any]) -> JSON:
    """Pass-through controls that a dialect gives by name at the top level, moved (out of
    ``passed_on``) to where DashScope reads them: DashScope reads only ``model``,
    ``input`` and ``parameters``, so left at the top they would be ignored.

    Every name for one DashScope field is moved, whichever the request carries, so none
    is left behind at the top level. Two names for one field (``prompt_extend`` and
    ``enable_prompt_expansion``) with the same value are one control; with different
    values the request contradicts itself and is refused (``UpstreamRejected``) before
    anything is sent, rather than one of them silently winning."""
    placed: JSON = {}
    given: dict[tuple[str, str], str] = {}  # (section, field) -> the name that set it
    for name, (section, field, kind) in _PLACES.items():
        value = passed_on.get(name)
        if not isinstance(value, kind):
            continue
        passed_on.pop(name)
        target = placed.setdefault(section, {})
        if field in target and target[field] != value:
            first = given[(section, field)]
            raise UpstreamRejected(
                f"{first} ({target[field]!r}) and {name} ({value!r}) both set DashScope's "
                f"{section}.{field} and disagree; give one of them"
            )
        target[field] = value
        given[(section, field)] = name
    return placed


def _parameters(req: GenerationRequest, *, image: bool) -> JSON:
    """``parameters``: image models take ``resolution`` (``720P``), text ones ``size``."""
    parameters: JSON = {}
    if image:
        if req.resolution:
            parameters["resolution"] = req.resolution.upper()
    elif req.resolution or req.aspect_ratio:
        if size := wan_size(req.resolution, req.aspect_ratio):
            parameters["size"] = size
        else:
            log.info("dashscope: no size for %s %s", req.resolution, req.aspect_ratio)
    if req.duration_s is not None:
        parameters["duration"] = req.duration_s
    if req.seed is not None:
        parameters["seed"] = req.seed
    if req.audio is not None:
        parameters["audio"] = req.audio
    return parameters


class DashscopeAdapter(AdapterBase):
    """DashScope's async tasks for Wan: submit, poll ``/api/v1/tasks/{id}``, cancel."""

    name = "dashscope"
    capabilities = frozenset(
        {
            Capability.CANCEL,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.AUDIO,
            Capability.NEGATIVE_PROMPT,
            Capability.SEED,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._base = ctx.base_url.rstrip("/")

    def _headers(self, *, submit: bool = False) -> dict[str, str]:
        headers = {"X-DashScope-Async": "enable"} if submit else {}
        if self._ctx.api_key:
            headers["Authorization"] = f"Bearer {self._ctx.api_key}"
        return headers

    def build_body(self, req: GenerationRequest, route: Route) -> tuple[str, JSON]:
        """The endpoint path and body for ``req`` (pure; no I/O)."""
        model = route.image_model if req.first_frame and route.image_model else route.model
        kf2v = "kf2v" in model
        body: JSON = {
            "model": model,
            "input": _inputs(req, kf2v=kf2v),
            "parameters": _parameters(req, image=kf2v or bool(req.first_frame)) | _shots(req, model),
        }
        deep_merge(body, route.params)
        passed_on = dict(req.provider_options)
        merge_under(body, _placed(passed_on))
        merge_under(body, passed_on)
        return (KF2V_PATH if kf2v else VIDEO_PATH), body

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        path, body = self.build_body(req, route)
        data, _ = await request_json(
            self._ctx,
            "POST",
            self._base + path,
            json_body=body,
            headers=self._headers(submit=True),
            classify=_classify,
            submit=True,
        )
        request_id = dig(data, "request_id") if isinstance(dig(data, "request_id"), str) else None
        task_id = accepted_id(data, "output", "task_id", request_id=request_id, what="output.task_id")
        return UpstreamRef(id=task_id, request_id=request_id)

    async def check(self) -> bool:
        """One page of the task list, read with the key."""
        await request_json(
            self._ctx,
            "GET",
            f"{self._base}/api/v1/tasks",
            params={"page_no": "1", "page_size": "1"},
            headers=self._headers(),
            classify=_classify,
        )
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        data, _ = await request_json(
            self._ctx,
            "GET",
            f"{self._base}/api/v1/tasks/{ref.id}",
            headers=self._headers(),
            classify=_classify,
        )
        return status_of(expect_dict(data))

    async def cancel(self, ref: UpstreamRef) -> None:
        """Cancel a PENDING task; a task already running cannot be stopped (logged)."""
        try:
            await request_json(
                self._ctx,
                "POST",
                f"{self._base}/api/v1/tasks/{ref.id}/cancel",
                headers=self._headers(),
                classify=_classify,
                allow_empty=True,
            )
        except UpstreamRejected as exc:
            log.info("dashscope: task %s could not be canceled: %s", ref.id, exc.message)


def status_of(answer: JSON) -> UpstreamStatus:
    """Normalise one ``GET /api/v1/tasks/{id}`` answer."""
    request_id = answer.get("request_id") if isinstance(answer.get("request_id"), str) else None
    output = answer.get("output")
    raw = dig(output, "task_status")
    if not isinstance(output, dict) or not isinstance(raw, str):
        raise UpstreamProtocolError("dashscope task has no output.task_status", request_id=request_id)
    if raw == "UNKNOWN":
        message = "DashScope no longer knows this task (UNKNOWN): it expired or never existed here"
        error = UpstreamOutputExpired(message, request_id=request_id)
        return UpstreamStatus(state="failed", error=error, raw_status=raw)
    state = state_for("dashscope", _STATES, raw, dig(output, "task_id"))
    if state == "succeeded":
        url = output.get("video_url")
        if not isinstance(url, str) or not url:
            raise UpstreamProtocolError("dashscope task SUCCEEDED without video_url", request_id=request_id)
        video = UpstreamOutput(url=url, content_type="video/mp4")
        cost = usage.units(dig(answer, "usage", "video_duration"), "seconds")
        return UpstreamStatus(
            state="succeeded", progress=100, outputs=(video,), raw_status=raw, reported_cost=cost
        )
    if state == "failed":
        code = output.get("code") if isinstance(output.get("code"), str) else None
        text = output.get("message") if isinstance(output.get("message"), str) else None
        message = f"{code}: {text}" if code and text else (text or code or "the task failed")
        policy = bool(code and code.startswith("DataInspection"))
        cls = UpstreamContentPolicy if policy else UpstreamRejected
        return UpstreamStatus(state="failed", error=cls(message, request_id=request_id), raw_status=raw)
    return UpstreamStatus(state=state, raw_status=raw)
