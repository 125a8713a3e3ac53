"""Google Veo through Vertex AI (the regional ``aiplatform.googleapis.com`` hosts).

Wire protocol (specs/upstream-protocols.md §4b): the Veo payload of ``gemini`` over

- ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning``
- ``POST .../models/{m}:fetchPredictOperation`` with ``{"operationName": name}`` to poll,

authenticated with ``Authorization: Bearer <OAuth2 access token>``. The token is
``ctx.api_key`` when one is configured (a ready token), otherwise it is minted from
``ctx.options["credentials_file"]`` (a service-account JSON) by the OAuth2
JWT-bearer exchange, through ``ctx.http``, and refreshed before it runs out.
``project`` and ``location`` come from ``ctx.options`` (the project may also come
from the credentials file).

Finished videos are ``{gcsUri | bytesBase64Encoded, mimeType}``. A ``gs://`` output is
downloaded through the GCS JSON API with the same token. An inline output is not
copied into the output record: its URL is ``vertex-inline:<operation>#<n>`` and
``stream_output`` fetches the operation again and decodes the n-th base64 value as
it streams in, so the video is never held whole in memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import jwt

from vidgate.domain.request import GenerationRequest
from vidgate.providers.adapter import AdapterBase
from vidgate.providers.base import (
    JSON,
    Capability,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamError,
    UpstreamOutput,
    UpstreamOutputExpired,
    UpstreamProtocolError,
    UpstreamRef,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vidgate.providers.gemini import (
    google_classify,
    merge_veo_extras,
    operation_name,
    operation_status,
    veo_body,
    veo_model,
)
from vidgate.providers.http import (
    CHUNK,
    acceptance,
    dig,
    error_for_status,
    request_id_of,
    request_json,
    stream_http_output,
)

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_LOCATION = "us-central1"
DEFAULT_STORAGE_URL = "https://storage.googleapis.com"
INLINE_SCHEME = "vertex-inline:"


def api_root(base_url: str, location: str) -> str:
    """The regional host for ``location`` when pointed at Google; a custom base URL as is."""
    base = base_url.rstrip("/")
    if (urlsplit(base).hostname or "").endswith("aiplatform.googleapis.com"):
        host = "aiplatform" if location == "global" else f"{location}-aiplatform"
        return f"https://{host}.googleapis.com"
    return base


# ------------------------------------------------------------------ tokens


JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
REFRESH_MARGIN_S = 300


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What a service-account JSON file holds that the token exchange needs."""

    email: str
    private_key: str
    key_id: str | None
    token_uri: str
    project: str | None


def load_service_account(path: str) -> ServiceAccount:
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UpstreamAuthError(f"cannot load the Vertex service-account file: {exc}") from exc
    email, key, uri = (dig(info, name) for name in ("client_email", "private_key", "token_uri"))
    if not all(isinstance(value, str) and value for value in (email, key, uri)):
        raise UpstreamAuthError(
            "the Vertex service-account file lacks client_email, private_key or token_uri"
        )
    key_id, project = dig(info, "private_key_id"), dig(info, "project_id")
    return ServiceAccount(
        email=str(email),
        private_key=str(key),
        key_id=key_id if isinstance(key_id, str) else None,
        token_uri=str(uri),
        project=project if isinstance(project, str) else None,
    )


def _token_classify(status: int, body: Any, request_id: str | None) -> UpstreamError | None:
    """A 4xx from the token endpoint (invalid_grant, bad scope) means bad credentials."""
    if 400 <= status < 500 and status != 429:
        reason = dig(body, "error_description") or dig(body, "error") or f"HTTP {status}"
        return UpstreamAuthError(
            f"the Vertex credentials were refused: {reason}", status_code=status, request_id=request_id
        )
    return None


class AccessTokens:
    """Bearer tokens for Vertex: a ready one, or one minted from a service-account file.

    The OAuth2 JWT-bearer exchange (RFC 7523, as google-auth does it) goes through
    ``ctx.http`` like every other call: an RS256 assertion signed with the account's
    key, POSTed as a form to its ``token_uri``.
    """

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx
        self._ready = ctx.api_key
        self._file = ctx.options.get("credentials_file")
        self._account: ServiceAccount | None = None
        self._token: str | None = None
        self._expires = 0.0
        self.project: str | None = None
        self._lock = asyncio.Lock()

    @property
    def refreshable(self) -> bool:
        return not self._ready and bool(self._file)

    async def token(self, *, force: bool = False) -> str:
        if self._ready:
            return self._ready
        if not self._file:
            raise UpstreamAuthError("Vertex needs an access token or a credentials_file")
        async with self._lock:
            if self._account is None:
                self._account = await asyncio.to_thread(load_service_account, self._file)
                self.project = self._account.project
            if force or self._token is None or time.time() > self._expires - REFRESH_MARGIN_S:
                self._token, self._expires = await self._exchange(self._account)
            return self._token

    async def _exchange(self, account: ServiceAccount) -> tuple[str, float]:
        now = int(time.time())
        claims = {
            "iss": account.email,
            "scope": SCOPE,
            "aud": account.token_uri,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }
        headers = {"kid": account.key_id} if account.key_id else None
        try:
            assertion = jwt.encode(claims, account.private_key, algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise UpstreamAuthError(f"the Vertex service-account key cannot sign: {exc}") from exc
        body, _ = await request_json(
            self._ctx,
            "POST",
            account.token_uri,
            data={"grant_type": JWT_GRANT, "assertion": assertion},
            classify=_token_classify,
        )
        token, lifetime = dig(body, "access_token"), dig(body, "expires_in")
        if not isinstance(token, str) or not token:
            raise UpstreamAuthError("the Vertex token endpoint returned no access token")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else float(TOKEN_LIFETIME_S)
        return token, now + seconds


# ----------------------------------------------------------- inline videos


def _unescape(text: bytes) -> bytes:
    """Base64 inside a JSON string: only ``\\/`` (and line-wrap escapes) can appear."""
    if b"\\" not in text:
        return text
    cleaned = text.replace(b"\\/", b"/").replace(b"\\n", b"").replace(b"\\r", b"")
    if b"\\" in cleaned:
        raise UpstreamProtocolError("unexpected escape inside the inline video")
    return cleaned


class InlineVideoReader:
    """Decode the ``index``-th ``"bytesBase64Encoded"`` string of a JSON body fed in pieces.

    Holds at most one network chunk plus three base64 characters at any time.
    """

    KEY = b'"bytesBase64Encoded"'
    _OPEN = re.compile(rb'\s*:\s*"')
    _MAYBE_OPEN = re.compile(rb"\s*(?::\s*)?")

    def __init__(self, index: int = 0) -> None:
        self._skip = index
        self._buffer = b""
        self._pending = b""
        self._phase = "seek"  # seek -> open -> value -> done

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next piece of the body; return the video bytes it completes."""
        out: list[bytes] = []
        if self._phase == "done":
            return out
        self._buffer += data
        while self._phase != "value":
            if self._phase == "seek":
                at = self._buffer.find(self.KEY)
                if at < 0:
                    self._buffer = self._buffer[-(len(self.KEY) - 1) :]
                    return out
                self._buffer = self._buffer[at + len(self.KEY) :]
                self._phase = "open"
            match = self._OPEN.match(self._buffer)
            if match is None:
                if self._MAYBE_OPEN.fullmatch(self._buffer):
                    return out  # the ':' or the opening quote is still on its way
                self._phase = "seek"  # the key's text appeared, but not as a key
                continue
            self._buffer = self._buffer[match.end() :]
            if self._skip:
                self._skip -= 1
                self._phase = "seek"
            else:
                self._phase = "value"
        end = self._buffer.find(b'"')
        text = self._buffer if end < 0 else self._buffer[:end]
        hold = b""
        if end < 0 and text.endswith(b"\\"):
            text, hold = text[:-1], b"\\"
        self._pending += _unescape(text)
        usable = len(self._pending) if end >= 0 else len(self._pending) // 4 * 4
        if usable:
            try:
                out.append(base64.b64decode(self._pending[:usable], validate=True))
            except binascii.Error as exc:
                raise UpstreamProtocolError("the inline video is not valid base64") from exc
        self._pending = self._pending[usable:]
        self._buffer = hold
        if end >= 0:
            self._phase = "done"
        return out

    def close(self) -> None:
        """Call at the end of the body: fail unless the whole value was read."""
        if self._phase in ("seek", "open"):
            raise UpstreamOutputExpired("the operation no longer carries the inline video")
        if self._phase == "value":
            raise UpstreamProtocolError("the inline video was cut short")


# ------------------------------------------------------------------- adapter


class VertexAdapter(AdapterBase):
    """Veo on Vertex AI. Poll only: no callback (Pub/Sub only), no cancel."""

    name = "vertex"
    capabilities = frozenset(
        {
            Capability.IMAGE_INPUT,
            Capability.LAST_FRAME,
            Capability.NEGATIVE_PROMPT,
            Capability.SEED,
            Capability.AUDIO,
        }
    )

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._location = ctx.options.get("location") or DEFAULT_LOCATION
        self._root = api_root(ctx.base_url, self._location)
        self._storage = (ctx.options.get("storage_base_url") or DEFAULT_STORAGE_URL).rstrip("/")
        self._tokens = AccessTokens(ctx)

    async def _project(self) -> str:
        if project := self._ctx.options.get("project"):
            return project
        await self._tokens.token()  # loading a credentials file may name the project
        if self._tokens.project:
            return self._tokens.project
        raise UpstreamAuthError("Vertex needs the project option (VIDGATE_VERTEX_PROJECT)")

    async def _auth(self, *, force: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self._tokens.token(force=force)}"}

    async def _post(self, url: str, body: JSON, *, submit: bool = False) -> tuple[Any, str | None]:
        """POST with the bearer token; a refused minted token is refreshed and tried once more."""
        try:
            answer, response = await request_json(
                self._ctx,
                "POST",
                url,
                json_body=body,
                headers=await self._auth(),
                classify=google_classify,
                submit=submit,
            )
        except UpstreamAuthError:
            if not self._tokens.refreshable:
                raise
            answer, response = await request_json(
                self._ctx,
                "POST",
                url,
                json_body=body,
                headers=await self._auth(force=True),
                classify=google_classify,
                submit=submit,
            )
        return answer, request_id_of(response)

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        """No idempotency key, client reference or list exists for Veo operations."""
        project = await self._project()
        body = await veo_body(self._ctx, req, gcs_ok=True)
        parameters = body["parameters"]
        if req.seed is not None:
            parameters["seed"] = req.seed
        if req.audio is not None:
            parameters["generateAudio"] = req.audio
        if storage_uri := self._ctx.options.get("storage_uri"):
            parameters["storageUri"] = storage_uri
        merge_veo_extras(body, route.params)
        merge_veo_extras(body, req.provider_options, under=True)
        if not body["parameters"]:
            del body["parameters"]
        model_path = (
            f"projects/{project}/locations/{self._location}/publishers/google/models/{veo_model(req, route)}"
        )
        answer, request_id = await self._post(
            f"{self._root}/v1/{model_path}:predictLongRunning", body, submit=True
        )
        with acceptance():
            name = operation_name(answer, request_id)
        return UpstreamRef(
            id=name,
            request_id=request_id,
            state={"model_path": name.partition("/operations/")[0] or model_path},
        )

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        model_path = ref.state.get("model_path") or ref.id.partition("/operations/")[0]
        answer, request_id = await self._post(
            f"{self._root}/v1/{model_path}:fetchPredictOperation", {"operationName": ref.id}
        )
        return operation_status(answer, lambda samples: self._outputs(ref.id, samples), request_id)

    @staticmethod
    def _outputs(name: str, samples: list[JSON]) -> tuple[UpstreamOutput, ...]:
        outputs: list[UpstreamOutput] = []
        inline = 0
        for video in samples:
            mime = str(video.get("mimeType") or "video/mp4")
            if isinstance(uri := video.get("gcsUri") or video.get("uri"), str) and uri:
                outputs.append(UpstreamOutput(url=uri, content_type=mime))
            elif isinstance(video.get("bytesBase64Encoded"), str):
                outputs.append(UpstreamOutput(url=f"{INLINE_SCHEME}{name}#{inline}", content_type=mime))
                inline += 1
        return tuple(outputs)

    async def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        if output.url.startswith(INLINE_SCHEME):
            name, _, index = output.url[len(INLINE_SCHEME) :].rpartition("#")
            async for chunk in self._stream_inline(name, int(index or 0)):
                yield chunk
            return
        if output.url.startswith("gs://"):
            bucket, _, obj = output.url[5:].partition("/")
            url = f"{self._storage}/storage/v1/b/{bucket}/o/{quote(obj, safe='')}?alt=media"
            output = UpstreamOutput(url=url, headers={**output.headers, **await self._auth()})
        async for chunk in stream_http_output(self._ctx, output):
            yield chunk

    async def _stream_inline(self, name: str, index: int) -> AsyncIterator[bytes]:
        """Fetch the operation again and decode its inline video while it streams in."""
        model_path = name.partition("/operations/")[0]
        url = f"{self._root}/v1/{model_path}:fetchPredictOperation"
        reader = InlineVideoReader(index)
        try:
            async with self._ctx.http.stream(
                "POST",
                url,
                json={"operationName": name},
                headers=await self._auth(),
                timeout=max(self._ctx.timeout_s, 60.0),
            ) as response:
                request_id = request_id_of(response)
                if response.status_code in (404, 410):
                    raise UpstreamOutputExpired(
                        "the operation is gone",
                        status_code=response.status_code,
                        request_id=request_id,
                    )
                if not response.is_success:
                    await response.aread()
                    body = _json_or_text(response)
                    raise google_classify(response.status_code, body, request_id) or (
                        error_for_status(response.status_code, body, request_id)
                    )
                async for chunk in response.aiter_bytes(CHUNK):
                    for piece in reader.feed(chunk):
                        yield piece
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("download of the inline video timed out") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"download failed: {type(exc).__name__}") from exc
        reader.close()


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:300]
