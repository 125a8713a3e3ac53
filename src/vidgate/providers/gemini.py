"""Google Veo through the Gemini Developer API (``generativelanguage.googleapis.com``).

Wire protocol (specs/upstream-protocols.md §4a):

- ``POST /v1beta/models/{model}:predictLongRunning`` with ``x-goog-api-key``; the body is
  ``{"instances": [{prompt, image, lastFrame, referenceImages}], "parameters": {...}}``
  and the answer is a long-running operation ``{"name": "models/.../operations/..."}``.
- ``GET /v1beta/{name}`` until ``done`` is true; then either ``error`` (google.rpc.Status)
  or ``response.generateVideoResponse.generatedSamples[].video.uri``. A finished
  operation with no samples and ``raiMediaFilteredCount > 0`` was safety-filtered.
- The video URI needs the same API key to download and may redirect.

Input images are inline base64 only in this API, so http(s) image URLs are fetched
and encoded here. Gemini refuses ``seed`` and ``generateAudio`` (Vertex-only), so
they are left out. The Veo body and operation helpers are shared with ``vertex``,
which speaks the same payload over a different transport.
"""

from __future__ import annotations

import base64
import binascii
import logging
import mimetypes
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from vidgate.domain.request import GenerationRequest
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
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vidgate.providers.http import (
    CHUNK,
    acceptance,
    deep_merge,
    dig,
    error_for_status,
    expect_dict,
    fetch_user_input,
    merge_under,
    request_id_of,
    request_json,
)

log = logging.getLogger(__name__)

API_VERSION = "v1beta"
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_REFERENCE_IMAGES = 3
MAX_REDIRECTS = 5
# Keys that live at the top of a Veo body; any other extra key belongs in "parameters".
TOP_LEVEL_KEYS = frozenset({"instances", "parameters", "labels", "webhookConfig"})

# google.rpc.Code numbers -> our error classes (anything else is a plain rejection).
_RPC_ERRORS: Mapping[int, type[UpstreamError]] = {
    2: UpstreamUnavailable,  # UNKNOWN
    4: UpstreamTimeout,  # DEADLINE_EXCEEDED
    7: UpstreamAuthError,  # PERMISSION_DENIED
    8: UpstreamRateLimited,  # RESOURCE_EXHAUSTED
    13: UpstreamUnavailable,  # INTERNAL
    14: UpstreamUnavailable,  # UNAVAILABLE
    16: UpstreamAuthError,  # UNAUTHENTICATED
}


# ------------------------------------------------------------ Veo wire helpers


def google_classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    """Google's error envelope ``{"error": {code, message, status, details}}``.

    A wrong API key is a 400 ``INVALID_ARGUMENT`` whose ErrorInfo reason is
    ``API_KEY_INVALID``; that is an auth failure, not a bad request.
    """
    error = dig(body, "error")
    if not isinstance(error, dict):
        return None
    message = str(error.get("message") or f"upstream answered HTTP {status}")
    word = error.get("status")
    reasons = {d.get("reason") for d in error.get("details") or () if isinstance(d, dict)}
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id}
    if "API_KEY_INVALID" in reasons or word in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return UpstreamAuthError(message, **kwargs)
    if word == "RESOURCE_EXHAUSTED":
        return UpstreamRateLimited(message, **kwargs)
    return None


def rpc_error(error: JSON, request_id: str | None = None) -> UpstreamError:
    """The error of a finished operation (a google.rpc.Status) as one of ours."""
    message = str(error.get("message") or error.get("status") or "video generation failed")
    code = error.get("code")
    cls = _RPC_ERRORS.get(code, UpstreamRejected) if isinstance(code, int) else UpstreamRejected
    return cls(message, request_id=request_id)


def merge_veo_extras(body: JSON, extra: Mapping[str, Any], *, under: bool = False) -> None:
    """Merge catalog params or provider options: Veo's top-level keys stay on top,
    anything else goes into ``parameters``; ``under`` (a caller's pass-through
    options) only adds, never replaces what is there."""
    merge = merge_under if under else deep_merge
    top = {k: v for k, v in extra.items() if k in TOP_LEVEL_KEYS}
    params = {k: v for k, v in extra.items() if k not in TOP_LEVEL_KEYS}
    if params:
        merge(body.setdefault("parameters", {}), params)
    merge(body, top)


def _parse_data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,XXXX`` -> (mime type, base64 text)."""
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise UpstreamRejected("image data URLs must be base64-encoded")
    mime = header[5:].split(";")[0] or "image/png"
    return mime, payload


async def _download_image(ctx: ProviderContext, url: str) -> tuple[bytes, str]:
    """An input image the client gave by URL, through the guarded client (see ``fetch_user_input``)."""
    data, content_type = await fetch_user_input(ctx, url, max_bytes=MAX_IMAGE_BYTES)
    mime = content_type.split(";")[0].strip()
    if not mime.startswith("image/"):
        mime = mimetypes.guess_type(urlsplit(url).path)[0] or "image/jpeg"
    return data, mime


async def veo_image(ctx: ProviderContext, url: str, *, gcs_ok: bool = False) -> JSON:
    """A Veo ``Image``: ``{bytesBase64Encoded, mimeType}``, or ``{gcsUri, mimeType}`` on Vertex."""
    if url.startswith("data:"):
        mime, payload = _parse_data_url(url)
        return {"bytesBase64Encoded": payload, "mimeType": mime}
    if url.startswith("gs://"):
        if not gcs_ok:
            raise UpstreamRejected("the Gemini API takes inline images only, not gs:// URIs")
        return {"gcsUri": url, "mimeType": mimetypes.guess_type(url)[0] or "image/jpeg"}
    data, mime = await _download_image(ctx, url)
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": mime}


async def veo_body(ctx: ProviderContext, req: GenerationRequest, *, gcs_ok: bool = False) -> JSON:
    """The documented ``{"instances": [...], "parameters": {...}}`` shared by Gemini and Vertex."""
    instance: JSON = {"prompt": req.prompt} if req.prompt else {}
    if req.first_frame:
        instance["image"] = await veo_image(ctx, req.first_frame, gcs_ok=gcs_ok)
    if req.last_frame:
        instance["lastFrame"] = await veo_image(ctx, req.last_frame, gcs_ok=gcs_ok)
    if references := req.reference_images[:MAX_REFERENCE_IMAGES]:
        instance["referenceImages"] = [
            {"image": await veo_image(ctx, url, gcs_ok=gcs_ok), "referenceType": "ASSET"}
            for url in references
        ]
    parameters: JSON = {}
    if req.aspect_ratio:
        parameters["aspectRatio"] = req.aspect_ratio
    if req.duration_s is not None:
        parameters["durationSeconds"] = req.duration_s
    if req.resolution:
        parameters["resolution"] = req.resolution.lower()
    if req.negative_prompt:
        parameters["negativePrompt"] = req.negative_prompt
    return {"instances": [instance], "parameters": parameters}


def veo_model(req: GenerationRequest, route: Route) -> str:
    return route.image_model if req.first_frame and route.image_model else route.model


def operation_name(body: Any, request_id: str | None) -> str:
    name = dig(body, "name")
    if not isinstance(name, str) or not name:
        raise UpstreamProtocolError("the operation has no name", request_id=request_id)
    return name


def video_samples(response: Any) -> list[JSON]:
    """The video objects of a finished Veo operation, whichever documented shape it takes."""
    for path in (
        ("generateVideoResponse", "generatedSamples"),
        ("generatedSamples",),
        ("videos",),
        ("generatedVideos",),
    ):
        items = dig(response, *path)
        if isinstance(items, list) and items:
            videos = [item.get("video", item) for item in items if isinstance(item, dict)]
            return [video for video in videos if isinstance(video, dict)]
    return []


def operation_status(
    body: Any,
    outputs_of: Callable[[list[JSON]], tuple[UpstreamOutput, ...]],
    request_id: str | None = None,
) -> UpstreamStatus:
    """Normalise a Veo long-running operation (Gemini or Vertex)."""
    op = expect_dict(body, request_id)
    operation_name(op, request_id)
    if op.get("done") is not True:
        return UpstreamStatus(state="running", raw_status="pending")
    if isinstance(error := op.get("error"), dict):
        return UpstreamStatus(state="failed", error=rpc_error(error, request_id), raw_status="error")
    response = op.get("response")
    if outputs := outputs_of(video_samples(response)):
        return UpstreamStatus(state="succeeded", progress=100, outputs=outputs, raw_status="done")
    filtered = dig(response, "generateVideoResponse", "raiMediaFilteredCount") or dig(
        response, "raiMediaFilteredCount"
    )
    if isinstance(filtered, int) and filtered > 0:
        reasons = dig(response, "generateVideoResponse", "raiMediaFilteredReasons") or dig(
            response, "raiMediaFilteredReasons"
        )
        reason = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else ""
        error = UpstreamContentPolicy(
            reason or "the video was blocked by the upstream's safety filters",
            request_id=request_id,
        )
        return UpstreamStatus(state="failed", error=error, raw_status="filtered")
    raise UpstreamProtocolError("the finished operation carries no video", request_id=request_id)


async def stream_base64(text: str, start: int = 0) -> AsyncIterator[bytes]:
    """Decode base64 ``text[start:]`` a slice at a time (no second full copy in memory)."""
    step = CHUNK // 3 * 4
    try:
        for offset in range(start, len(text), step):
            yield base64.b64decode(text[offset : offset + step], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UpstreamProtocolError("the inline video is not valid base64") from exc


# ------------------------------------------------------------------- adapter


class GeminiAdapter(AdapterBase):
    """Veo on the Gemini Developer API. Poll only: no callback, no cancel."""

    name = "gemini"
    capabilities = frozenset(
        {
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.NEGATIVE_PROMPT,
            Capability.AUDIO,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._root = f"{ctx.base_url.rstrip('/')}/{API_VERSION}"

    def _headers(self) -> dict[str, str]:
        if not self._ctx.api_key:
            raise UpstreamAuthError("no Gemini API key is configured")
        return {"x-goog-api-key": self._ctx.api_key}

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        """No idempotency key or client reference exists on ``predictLongRunning``."""
        body = await veo_body(self._ctx, req)
        merge_veo_extras(body, route.params)
        merge_veo_extras(body, req.provider_options, under=True)
        if not body["parameters"]:
            del body["parameters"]
        url = f"{self._root}/models/{veo_model(req, route)}:predictLongRunning"
        answer, response = await request_json(
            self._ctx,
            "POST",
            url,
            json_body=body,
            headers=self._headers(),
            classify=google_classify,
            submit=True,
        )
        request_id = request_id_of(response)
        with acceptance():
            return UpstreamRef(id=operation_name(answer, request_id), request_id=request_id)

    async def check(self) -> bool:
        """One page of the model list, read with the key."""
        await request_json(
            self._ctx,
            "GET",
            f"{self._root}/models",
            params={"pageSize": "1"},
            headers=self._headers(),
            classify=google_classify,
        )
        return True

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        answer, response = await request_json(
            self._ctx,
            "GET",
            f"{self._root}/{ref.id}",
            headers=self._headers(),
            classify=google_classify,
        )
        return operation_status(answer, self._outputs, request_id_of(response))

    @staticmethod
    def _outputs(samples: list[JSON]) -> tuple[UpstreamOutput, ...]:
        outputs: list[UpstreamOutput] = []
        for video in samples:
            mime = str(video.get("mimeType") or video.get("encoding") or "video/mp4")
            if isinstance(uri := video.get("uri"), str) and uri:
                # The key is added at download time, so it never lands in a stored job record.
                outputs.append(UpstreamOutput(url=uri, content_type=mime))
            elif isinstance(encoded := video.get("encodedVideo"), str) and encoded:
                outputs.append(UpstreamOutput(url=f"data:{mime};base64,{encoded}", content_type=mime))
        return tuple(outputs)

    async def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        if output.url.startswith("data:"):
            async for chunk in stream_base64(output.url, output.url.index(",") + 1):
                yield chunk
            return
        async for chunk in self._download(output.url, {**output.headers, **self._headers()}):
            yield chunk

    async def _download(self, url: str, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """GET the file URI with the key, following redirects; the key never leaves its host."""
        try:
            for _ in range(MAX_REDIRECTS + 1):
                async with self._ctx.http.stream(
                    "GET", url, headers=headers, timeout=max(self._ctx.timeout_s, 60.0)
                ) as response:
                    if response.is_redirect and "location" in response.headers:
                        target = response.url.join(response.headers["location"])
                        if target.host != response.url.host:
                            headers = {k: v for k, v in headers.items() if k != "x-goog-api-key"}
                        url = str(target)
                        continue
                    await _check_download(response)
                    async for chunk in response.aiter_bytes(CHUNK):
                        yield chunk
                    return
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("download of the output timed out") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"download failed: {type(exc).__name__}") from exc
        raise UpstreamProtocolError("the output URL redirected too many times")


async def _check_download(response: httpx.Response) -> None:
    if response.status_code in (403, 404, 410):
        raise UpstreamOutputExpired(
            f"output URL answered HTTP {response.status_code}",
            status_code=response.status_code,
            request_id=request_id_of(response),
        )
    if not response.is_success:
        await response.aread()
        raise error_for_status(response.status_code, response.text[:300], request_id_of(response))
