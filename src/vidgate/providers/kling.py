"""Kling's official video API (specs/upstream-protocols.md §6).

- ``POST /v1/videos/text2video`` or ``/v1/videos/image2video`` ->
  ``{"code": 0, "request_id", "data": {"task_id", "task_status": "submitted"}}``
- ``GET /v1/videos/{same endpoint}/{task_id}``: ``task_status`` in
  ``submitted | processing | succeed | failed``; ``task_result.videos[].url`` when done,
  ``task_status_msg`` carrying the reason on failure.

Auth is a short-lived HS256 JWT, ``{"iss": access key, "exp": now+1800, "nbf": now-5}``
signed with the secret key (``ctx.api_key`` and ``ctx.options["secret_key"]``), sent
as ``Authorization: Bearer <jwt>``; it is cached and re-minted five minutes before it
runs out, and once more when Kling answers 401. Errors carry a Kling ``code`` whose
meaning ``kling_error`` maps onto the error tree. Callbacks (``callback_url``) are
the bare ``data`` object and unsigned: ``parse_callback`` reports them as unverified
hints to poll now. Output URLs are plain and kept for 30 days.

Lengths and sound: ``duration`` is a string of whole seconds; kling-v3 makes 3 to 15 s,
earlier models "5" or "10". Native audio is ``sound: "on" | "off"`` on kling-v2-6 and
later (the request's ``audio``); it is never sent to older models, which refuse it.

Reconciliation: every create carries ``external_task_id`` = the gateway job id (Kling
keeps it in ``task_info`` and refuses a second task with the same one), and ``find``
looks it up in the task lists. There is no idempotency key and no cancel.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import jwt

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
    unsigned_hint,
)

log = logging.getLogger(__name__)

TOKEN_TTL_S = 1800
REFRESH_MARGIN_S = 300
NOT_BEFORE_SKEW_S = 5
STATES: Mapping[str, State] = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "succeeded",
    "failed": "failed",
}
KINDS = ("text2video", "image2video")
FIND_PAGE_SIZE = 100  # the newest tasks are searched; a lost submit is minutes old
# Models that take ``sound`` (native audio), by prefix of their model_name.
SOUND_MODELS = ("kling-v2-6", "kling-v3")
# req.options that are Kling body fields of the same name.
OPTION_FIELDS = ("mode", "cfg_scale", "camera_control")


def kling_error(status: int | None, body: Any, request_id: str | None) -> UpstreamError | None:
    """The error a Kling ``code`` stands for; None for 0 or a body without one."""
    code = dig(body, "code")
    if not isinstance(code, int) or code == 0:
        return None
    message = f"{dig(body, 'message') or 'Kling error'} ({code})"
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id}
    cls: type[UpstreamError]
    if 1000 <= code <= 1004:
        cls = UpstreamAuthError  # bad, empty, invalid, not yet valid or expired token
    elif 1100 <= code <= 1103 or code == 1304:
        cls = UpstreamAuthError  # the operator's account: arrears, no resource pack, IP whitelist
    elif code in (1302, 1303):
        cls = UpstreamRateLimited
    elif code in (1300, 1301):
        cls = UpstreamContentPolicy
    elif 1200 <= code <= 1299:
        cls = UpstreamRejected
    elif code == 5002:
        cls = UpstreamTimeout
    elif 5000 <= code <= 5999:
        cls = UpstreamUnavailable
    else:
        return None  # unknown code: the HTTP status decides
    return cls(message, **kwargs)


def _image(url: str) -> str:
    """Kling takes an image URL, or raw base64 without the ``data:`` prefix."""
    if url.startswith("data:"):
        return url.partition(",")[2]
    return url


class KlingToken:
    """The HS256 JWT Kling wants, cached until five minutes before it expires."""

    def __init__(self, access_key: str | None, secret_key: str | None) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._token = ""
        self._expires = 0

    def get(self, *, fresh: bool = False) -> str:
        if not self._access_key or not self._secret_key:
            raise UpstreamAuthError("Kling needs an access key (api key) and a secret_key")
        now = int(time.time())
        if fresh or not self._token or self._expires - now < REFRESH_MARGIN_S:
            self._expires = now + TOKEN_TTL_S
            claims = {"iss": self._access_key, "exp": self._expires, "nbf": now - NOT_BEFORE_SKEW_S}
            self._token = jwt.encode(claims, self._secret_key, algorithm="HS256", headers={"typ": "JWT"})
        return self._token


class KlingAdapter(AdapterBase):
    """Kling text-to-video and image-to-video, with unsigned callbacks."""

    name = "kling"
    capabilities = frozenset(
        {
            Capability.CALLBACK,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.NEGATIVE_PROMPT,
            Capability.AUDIO,
            Capability.FIND,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._base = ctx.base_url.rstrip("/")
        self.token = KlingToken(ctx.api_key, ctx.options.get("secret_key"))

    async def _send(
        self,
        method: str,
        path: str,
        body: JSON | None,
        *,
        fresh: bool,
        submit: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> tuple[JSON, str | None]:
        answer, response = await request_json(
            self._ctx,
            method,
            f"{self._base}{path}",
            json_body=body,
            headers={"Authorization": f"Bearer {self.token.get(fresh=fresh)}"},
            params=params,
            classify=kling_error,
            submit=submit,
        )
        request_id = request_id_of(response)
        with acceptance() if submit else contextlib.nullcontext():
            answer = expect_dict(answer, request_id)
        request_id = str(answer.get("request_id") or request_id or "") or None
        code = answer.get("code")
        if isinstance(code, int) and code != 0:  # an error inside a 2xx answer
            raise kling_error(response.status_code, answer, request_id) or UpstreamRejected(
                f"{answer.get('message') or 'Kling error'} ({code})", request_id=request_id
            )
        return answer, request_id

    async def _call(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        submit: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> tuple[JSON, str | None]:
        """One API call; a 401 is answered by minting a fresh token and trying once more."""
        try:
            return await self._send(method, path, body, fresh=False, submit=submit, params=params)
        except UpstreamAuthError as exc:
            if exc.status_code != 401:
                raise
            return await self._send(method, path, body, fresh=True, submit=submit, params=params)

    def build_body(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> tuple[str, JSON]:
        """The endpoint kind and create body for ``req`` (pure; no I/O)."""
        with_image = bool(req.first_frame or req.last_frame)
        kind = "image2video" if with_image else "text2video"
        model = route.image_model if with_image and route.image_model else route.model
        body: JSON = {"model_name": model, "external_task_id": attempt.job_id}
        if req.prompt:
            body["prompt"] = req.prompt
        if req.negative_prompt:
            body["negative_prompt"] = req.negative_prompt
        if req.duration_s is not None:
            body["duration"] = str(req.duration_s)  # a string on the wire: "5", "10", ...
        if req.audio is not None and model.startswith(SOUND_MODELS):
            body["sound"] = "on" if req.audio else "off"
        if req.aspect_ratio and not with_image:  # image-to-video follows the image
            body["aspect_ratio"] = req.aspect_ratio
        if req.first_frame:
            body["image"] = _image(req.first_frame)
        if req.last_frame:
            body["image_tail"] = _image(req.last_frame)
        body.update({key: req.options[key] for key in OPTION_FIELDS if key in req.options})
        if callback := callback_url_for(self._ctx, attempt):
            body["callback_url"] = callback
        deep_merge(body, route.params)
        merge_under(body, req.provider_options)
        return kind, body

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        kind, body = self.build_body(req, route, attempt)
        answer, request_id = await self._call("POST", f"/v1/videos/{kind}", body, submit=True)
        task_id = accepted_id(answer, "data", "task_id", request_id=request_id, what="task_id")
        return UpstreamRef(id=task_id, request_id=request_id, state={"kind": kind})

    async def find(self, attempt: SubmitAttempt, route: Route) -> UpstreamRef | None:
        """The task an earlier attempt created, by its ``external_task_id`` in the lists."""
        for kind in KINDS:
            params = {"pageNum": "1", "pageSize": str(FIND_PAGE_SIZE)}
            answer, request_id = await self._call("GET", f"/v1/videos/{kind}", params=params)
            tasks = answer.get("data")
            for task in tasks if isinstance(tasks, list) else ():
                if dig(task, "task_info", "external_task_id") == attempt.job_id:
                    task_id = dig(task, "task_id")
                    if isinstance(task_id, str | int) and task_id != "":
                        return UpstreamRef(id=str(task_id), request_id=request_id, state={"kind": kind})
        return None

    async def check(self) -> bool:
        """One page of one task, read with a freshly signed token."""
        await self._call("GET", "/v1/videos/text2video", params={"pageNum": "1", "pageSize": "1"})
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        kind = ref.state.get("kind", "text2video")
        answer, request_id = await self._call("GET", f"/v1/videos/{kind}/{ref.id}")
        data = answer.get("data")
        word = dig(data, "task_status")
        if not isinstance(data, dict) or not isinstance(word, str):
            raise UpstreamProtocolError("Kling answered without a task_status", request_id=request_id)
        state = state_for("kling", STATES, word, ref.id)
        if state == "failed":
            reason = str(data.get("task_status_msg") or "Kling reported the task as failed")
            return UpstreamStatus(
                state="failed",
                error=UpstreamRejected(reason, request_id=request_id),
                raw_status=word,
            )
        if state == "succeeded":
            videos = dig(data, "task_result", "videos")
            outputs = tuple(
                UpstreamOutput(url=video["url"], content_type="video/mp4")
                for video in videos or ()
                if isinstance(video, dict) and isinstance(video.get("url"), str)
            )
            if not outputs:
                raise UpstreamProtocolError("a finished task has no video URL", request_id=request_id)
            return UpstreamStatus(state="succeeded", progress=100, outputs=outputs, raw_status=word)
        return UpstreamStatus(state=state, raw_status=word)

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """Kling's unsigned push (the bare ``data`` object), as a hint to poll now."""
        return unsigned_hint(call, id_field="task_id", status_field="task_status")
