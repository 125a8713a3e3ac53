"""MiniMax Hailuo video generation, official v1 API (specs/upstream-protocols.md §5).

- ``POST /v1/video_generation`` (``Authorization: Bearer <key>``) -> ``{"task_id", "base_resp"}``
- ``GET /v1/query/video_generation?task_id=`` -> ``status`` in
  ``Preparing | Queueing | Processing | Success | Fail`` and, on success, ``file_id``
- ``GET /v1/files/retrieve?file_id=`` -> ``file.download_url`` (a plain signed URL, ~9 h)

MiniMax reports business errors in HTTP 200 answers through
``base_resp.status_code``; ``business_error`` maps those codes onto the error tree.
Resolutions are upper-case on the wire (``"768P"``); there is no aspect ratio,
negative prompt or seed field, so those are left out.

Callbacks: with ``callback_url`` set, MiniMax first POSTs ``{"challenge": ...}`` and
expects the same JSON echoed within 3 s (``challenge_response`` builds the echo; the
HTTP layer sends it). Later pushes carry lower-case statuses and no signature, so
``parse_callback`` returns them as unverified hints to poll now.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from vidgate.domain.request import GenerationRequest
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    JSON,
    CallbackRequest,
    CallbackResult,
    Capability,
    ProviderContext,
    Route,
    State,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamContentPolicy,
    UpstreamError,
    UpstreamOutput,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
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

STATES: Mapping[str, State] = {
    "Preparing": "queued",
    "Queueing": "queued",
    "Processing": "running",
    "Success": "succeeded",
    "Fail": "failed",
}
CALLBACK_STATUSES = frozenset({"processing", "success", "failed"})

# base_resp.status_code -> error class. 1026/1027 are documented; the rest are UNCONFIRMED.
ERRORS: Mapping[int, type[UpstreamError]] = {
    1000: UpstreamUnavailable,  # unknown error
    1001: UpstreamTimeout,
    1002: UpstreamRateLimited,
    1004: UpstreamAuthError,  # authentication failed
    1008: UpstreamAuthError,  # insufficient balance: the operator's account, not the client
    1013: UpstreamUnavailable,  # internal error
    1026: UpstreamContentPolicy,  # input sensitive
    1027: UpstreamContentPolicy,  # output sensitive
    1039: UpstreamRateLimited,  # token limit
    2013: UpstreamRejected,  # invalid parameters
    2049: UpstreamAuthError,  # invalid API key
}
_CODE_IN_MESSAGE = re.compile(r"\((\d{4})\)\s*$")


def business_error(body: Any, request_id: str | None, status_code: int | None = None) -> UpstreamError | None:
    """The error a non-zero ``base_resp.status_code`` stands for, or None when it is 0."""
    code = dig(body, "base_resp", "status_code")
    message = dig(body, "base_resp", "status_msg")
    text = dig(body, "error", "message")  # the newer envelope: {"error": {"message": "... (1004)"}}
    if code is None and isinstance(text, str) and (found := _CODE_IN_MESSAGE.search(text)):
        code, message = int(found.group(1)), text
    if not isinstance(code, int) or code == 0:
        return None
    cls = ERRORS.get(code, UpstreamRejected)
    return cls(f"{message or 'MiniMax error'} ({code})", status_code=status_code, request_id=request_id)


def _classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    return business_error(body, request_id, status)


def _json_of(call: CallbackRequest) -> Any:
    try:
        return json.loads(call.body)
    except ValueError:
        return None


def challenge_response(call: CallbackRequest) -> dict[str, str] | None:
    """The echo for MiniMax's callback handshake, or None when ``call`` is not one."""
    body = _json_of(call)
    if isinstance(body, dict) and isinstance(body.get("challenge"), str) and "task_id" not in body:
        return {"challenge": body["challenge"]}
    return None


class MinimaxAdapter(AdapterBase):
    """MiniMax Hailuo v1: submit, poll, file lookup, and unsigned callbacks."""

    name = "minimax"
    capabilities = frozenset({Capability.CALLBACK, Capability.IMAGE_INPUT, Capability.LAST_FRAME})

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._base = ctx.base_url.rstrip("/")

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: JSON | None = None,
        params: Mapping[str, str] | None = None,
        submit: bool = False,
    ) -> tuple[JSON, str | None]:
        """One API call; a non-zero ``base_resp`` raises unless the caller reads it itself."""
        if not self._ctx.api_key:
            raise UpstreamAuthError("no MiniMax API key is configured")
        answer, response = await request_json(
            self._ctx,
            method,
            f"{self._base}{path}",
            json_body=json_body,
            params=params,
            headers={"Authorization": f"Bearer {self._ctx.api_key}"},
            classify=_classify,
            submit=submit,
        )
        request_id = request_id_of(response) or response.headers.get("trace-id")
        if submit:
            with acceptance():
                return expect_dict(answer, request_id), request_id
        return expect_dict(answer, request_id), request_id

    def challenge_response(self, call: CallbackRequest) -> dict[str, Any] | None:
        return challenge_response(call)

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        model = route.image_model if req.first_frame and route.image_model else route.model
        body: JSON = {"model": model}
        if req.prompt:
            body["prompt"] = req.prompt
        if req.duration_s is not None:
            body["duration"] = req.duration_s
        if req.resolution:
            body["resolution"] = req.resolution.upper()
        if req.first_frame:
            body["first_frame_image"] = req.first_frame  # URLs and data: URLs both accepted
        if req.last_frame:
            body["last_frame_image"] = req.last_frame
        if references := req.reference_images:
            body["subject_reference"] = [{"type": "character", "image": references}]
        if "prompt_optimizer" in req.options:
            body["prompt_optimizer"] = bool(req.options["prompt_optimizer"])
        if callback := callback_url_for(self._ctx, attempt):
            body["callback_url"] = callback
        deep_merge(body, route.params)
        merge_under(body, req.provider_options)
        answer, request_id = await self._call("POST", "/v1/video_generation", json_body=body, submit=True)
        if error := business_error(answer, request_id):
            raise error  # a refusal in a 200 answer: nothing was accepted
        task_id = accepted_id(answer, "task_id", request_id=request_id, what="task_id")
        return UpstreamRef(id=task_id, request_id=request_id)

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        answer, request_id = await self._call("GET", "/v1/query/video_generation", params={"task_id": ref.id})
        status = answer.get("status")
        if status == "Fail":
            return UpstreamStatus(state="failed", error=self._failure(answer, request_id), raw_status=status)
        if error := business_error(answer, request_id):
            raise error
        if not isinstance(status, str):
            raise UpstreamProtocolError("MiniMax answered without a status", request_id=request_id)
        state = state_for("minimax", STATES, status, ref.id)
        if state == "succeeded":
            file_id = answer.get("file_id")
            if not isinstance(file_id, str | int) or file_id == "":
                raise UpstreamProtocolError("a successful task has no file_id", request_id=request_id)
            output = UpstreamOutput(url=await self._download_url(str(file_id)), content_type="video/mp4")
            return UpstreamStatus(state="succeeded", progress=100, outputs=(output,), raw_status=status)
        return UpstreamStatus(state="queued" if state == "queued" else "running", raw_status=status)

    @staticmethod
    def _failure(answer: JSON, request_id: str | None) -> UpstreamError:
        error = business_error(answer, request_id)
        if isinstance(error, UpstreamRejected):
            return error
        reason = error.message if error else answer.get("error_message")
        return UpstreamRejected(
            str(reason or "MiniMax reported the generation as failed"), request_id=request_id
        )

    async def _download_url(self, file_id: str) -> str:
        answer, request_id = await self._call("GET", "/v1/files/retrieve", params={"file_id": file_id})
        if error := business_error(answer, request_id):
            raise error
        url = dig(answer, "file", "download_url")
        if not isinstance(url, str) or not url:
            raise UpstreamProtocolError("the file has no download_url", request_id=request_id)
        return url

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """A status push, as an unverified hint; None for the handshake or a foreign body."""
        body = _json_of(call)
        if not isinstance(body, dict) or challenge_response(call) is not None:
            return None
        task_id, status = body.get("task_id"), body.get("status")
        if not isinstance(task_id, str | int) or task_id == "" or not isinstance(status, str):
            return None
        if "task_status" in body:  # Kling's shape, not ours
            return None
        if status not in CALLBACK_STATUSES and status not in STATES:
            log.warning("minimax callback for %s has an unknown status %r", task_id, status)
        return CallbackResult(upstream_id=str(task_id), verified=False)
