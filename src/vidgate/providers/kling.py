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
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import jwt

from vidgate.domain.request import GenerationRequest
from vidgate.providers.base import (
    JSON,
    CallbackRequest,
    CallbackResult,
    Capability,
    ProviderContext,
    Route,
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
)
from vidgate.providers.http import (
    deep_merge,
    dig,
    expect_dict,
    merge_under,
    request_id_of,
    request_json,
    stream_http_output,
    unsigned_hint,
)

log = logging.getLogger(__name__)

TOKEN_TTL_S = 1800
REFRESH_MARGIN_S = 300
NOT_BEFORE_SKEW_S = 5
STATES: Mapping[str, Literal["queued", "running", "succeeded", "failed"]] = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "succeeded",
    "failed": "failed",
}
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


class KlingAdapter:
    """Kling text-to-video and image-to-video, with unsigned callbacks."""

    name = "kling"
    capabilities = frozenset(
        {
            Capability.CALLBACK,
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.NEGATIVE_PROMPT,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._base = ctx.base_url.rstrip("/")
        self.token = KlingToken(ctx.api_key, ctx.options.get("secret_key"))

    async def _send(
        self, method: str, path: str, body: JSON | None, *, fresh: bool
    ) -> tuple[JSON, str | None]:
        answer, response = await request_json(
            self._ctx,
            method,
            f"{self._base}{path}",
            json_body=body,
            headers={"Authorization": f"Bearer {self.token.get(fresh=fresh)}"},
            classify=kling_error,
        )
        request_id = request_id_of(response)
        answer = expect_dict(answer, request_id)
        request_id = str(answer.get("request_id") or request_id or "") or None
        code = answer.get("code")
        if isinstance(code, int) and code != 0:  # an error inside a 2xx answer
            raise kling_error(response.status_code, answer, request_id) or UpstreamRejected(
                f"{answer.get('message') or 'Kling error'} ({code})", request_id=request_id
            )
        return answer, request_id

    async def _call(self, method: str, path: str, body: JSON | None = None) -> tuple[JSON, str | None]:
        """One API call; a 401 is answered by minting a fresh token and trying once more."""
        try:
            return await self._send(method, path, body, fresh=False)
        except UpstreamAuthError as exc:
            if exc.status_code != 401:
                raise
            return await self._send(method, path, body, fresh=True)

    async def submit(self, req: GenerationRequest, route: Route) -> UpstreamRef:
        with_image = bool(req.first_frame or req.last_frame)
        kind = "image2video" if with_image else "text2video"
        body: JSON = {"model_name": route.image_model if with_image and route.image_model else route.model}
        if req.prompt:
            body["prompt"] = req.prompt
        if req.negative_prompt:
            body["negative_prompt"] = req.negative_prompt
        if req.duration_s is not None:
            body["duration"] = str(req.duration_s)  # a string on the wire: "5" or "10"
        if req.aspect_ratio and not with_image:  # image-to-video follows the image
            body["aspect_ratio"] = req.aspect_ratio
        if req.first_frame:
            body["image"] = _image(req.first_frame)
        if req.last_frame:
            body["image_tail"] = _image(req.last_frame)
        body.update({key: req.options[key] for key in OPTION_FIELDS if key in req.options})
        if self._ctx.callback_url:
            body["callback_url"] = self._ctx.callback_url
        deep_merge(body, route.params)
        merge_under(body, req.provider_options)
        answer, request_id = await self._call("POST", f"/v1/videos/{kind}", body)
        task_id = dig(answer, "data", "task_id")
        if not isinstance(task_id, str | int) or task_id == "":
            raise UpstreamProtocolError("Kling answered without a task_id", request_id=request_id)
        return UpstreamRef(id=str(task_id), request_id=request_id, state={"kind": kind})

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        kind = ref.state.get("kind", "text2video")
        answer, request_id = await self._call("GET", f"/v1/videos/{kind}/{ref.id}")
        data = answer.get("data")
        word = dig(data, "task_status")
        if not isinstance(data, dict) or not isinstance(word, str):
            raise UpstreamProtocolError("Kling answered without a task_status", request_id=request_id)
        state = STATES.get(word)
        if state is None:
            log.warning("kling task %s has an unknown status %r; treating it as running", ref.id, word)
            return UpstreamStatus(state="running", raw_status=word)
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

    async def cancel(self, ref: UpstreamRef) -> None:
        """Kling documents no cancel; nothing to do."""

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """Kling's unsigned push (the bare ``data`` object), as a hint to poll now."""
        return unsigned_hint(call, id_field="task_id", status_field="task_status")

    def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_http_output(self._ctx, output)
