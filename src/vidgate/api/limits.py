"""Bounds on every request body, checked once for every route (a pure ASGI middleware).

``BodyLimits`` reads nothing itself: it watches the body as the app receives it.

- **Size**: 413 when Content-Length, or the bytes actually received (chunked or
  not), pass ``max_bytes``.
- **Depth**: JSON nests at most ``max_depth`` levels (400 otherwise), so no parser
  downstream ever recurses out of stack. Every body is scanned as JSON text (the
  dialects parse their bodies as JSON whatever the Content-Type); a multipart form
  has each of its non-file fields scanned instead (native ``metadata``/``options``).
- **Time**: a body that stalls for ``idle_timeout_s`` or takes longer than
  ``total_timeout_s`` in all gets 408. A client that goes away mid-body is logged
  at debug, never as an error.

The refusal is rendered in the caller's dialect (``ErrorRouter``) and sent at once,
with ``Connection: close``; the app then sees the client as gone and whatever it
answers is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.api.errors import ErrorRouter
from vidgate.errors import GatewayError, InvalidRequest, PayloadTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

log = logging.getLogger(__name__)

_JSON_SYNTAX = re.compile(rb'["\\\[\]{}]')
_DISCONNECT: Message = {"type": "http.disconnect"}


class RequestTimeout(GatewayError):
    status = 408
    code = "request_timeout"


class TooDeep(InvalidRequest):
    code = "json_too_deep"


class JsonDepth:
    """Incremental nesting depth of JSON text fed in chunks (strings and escapes aware)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def feed(self, chunk: bytes) -> bool:
        """Scan ``chunk``; False as soon as the nesting passes the limit."""
        for match in _JSON_SYNTAX.finditer(chunk):
            char = match.group()
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == b"\\":
                    self.escaped = True
                elif char == b'"':
                    self.in_string = False
            elif char == b'"':
                self.in_string = True
            elif char in (b"[", b"{"):
                self.depth += 1
                if self.depth > self.limit:
                    return False
            elif char in (b"]", b"}"):
                self.depth = max(0, self.depth - 1)
        return True


class FormDepth:
    """``JsonDepth`` over each non-file field of a multipart body, fed as it streams.

    A body that says it is multipart but is not (the parser gives up on it) may still
    be read as JSON by a handler, so the whole stream is also scanned as JSON, and that
    verdict counts from the moment the form turns out to be malformed.
    """

    def __init__(self, boundary: bytes, limit: int) -> None:
        self.limit = limit
        self.ok = True
        self._raw = JsonDepth(limit)
        self._raw_ok = True
        self._field: JsonDepth | None = None
        self._header_name = b""
        self._header_value = b""
        self._is_file = False
        self._broken = False
        callbacks: dict[str, Any] = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
        }
        self._parser = MultipartParser(boundary, cast("MultipartCallbacks", callbacks))

    def feed(self, chunk: bytes) -> bool:
        self._raw_ok = self._raw_ok and self._raw.feed(chunk)
        if not self._broken and self.ok:
            try:
                self._parser.write(chunk)
            except Exception:  # noqa: BLE001 (not a form after all: from now on it is judged as JSON)
                self._broken = True
        return self.ok and (self._raw_ok or not self._broken)

    def _part_begin(self) -> None:
        self._field, self._is_file = None, False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            _, options = parse_options_header(self._header_value)
            self._is_file = b"filename" in options
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        self._field = None if self._is_file else JsonDepth(self.limit)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is not None and not self._field.feed(data[start:end]):
            self.ok = False


def _depth_scanner(scope: Scope, limit: int) -> JsonDepth | FormDepth:
    headers = dict(scope.get("headers") or [])
    content_type, options = parse_options_header(headers.get(b"content-type", b""))
    boundary = options.get(b"boundary")
    if content_type == b"multipart/form-data" and boundary:
        return FormDepth(boundary, limit)
    return JsonDepth(limit)


class BodyLimits:
    """Size, JSON depth and time bounds on every request body (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        errors: ErrorRouter,
        max_depth: int = 64,
        idle_timeout_s: float = 30.0,
        total_timeout_s: float = 300.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.errors = errors
        self.max_depth = max_depth
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if (
            declared is not None
            and declared.isdigit()
            and (len(declared) > 15 or int(declared) > self.max_bytes)
        ):
            await self._refuse(scope, send, self._too_large())
            return
        await _Exchange(self, scope, receive, send).run()

    def _too_large(self) -> GatewayError:
        return PayloadTooLarge(f"the request body is larger than the {self.max_bytes // 2**20} MB limit")

    async def _refuse(self, scope: Scope, send: Send, error: GatewayError) -> None:
        response = self.errors.renderer_for(Request(scope).url.path)(error)
        response.headers["Connection"] = "close"

        async def nothing() -> Message:
            return _DISCONNECT

        await response(scope, nothing, send)


class _Exchange:
    """One request: the watched ``receive`` and ``send`` around the app."""

    def __init__(self, limits: BodyLimits, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.scope = scope
        self._receive = receive
        self._send = send
        self.seen = 0
        self.body_done = False
        self.started = False  # the app has begun its response
        self.refused = False  # we answered in its place
        self.client_gone = False
        self.depth = _depth_scanner(scope, limits.max_depth)
        self.deadline = time.monotonic() + limits.total_timeout_s

    async def run(self) -> None:
        try:
            await self.limits.app(self.scope, self.receive, self.send)
        except ClientDisconnect:
            if not (self.refused or self.client_gone):
                raise
            log.debug("%s %s: the body ended early", self.scope.get("method"), self.scope.get("path"))

    async def receive(self) -> Message:
        if self.refused:
            return _DISCONNECT
        if self.body_done:
            return await self._receive()
        wait = min(self.limits.idle_timeout_s, self.deadline - time.monotonic())
        try:
            message = await asyncio.wait_for(self._receive(), timeout=max(wait, 0.001))
        except TimeoutError:
            log.debug(
                "%s %s: the body stalled; answering 408", self.scope.get("method"), self.scope.get("path")
            )
            return await self.refuse(RequestTimeout("the request body was not received in time"))
        if message["type"] == "http.disconnect":
            self.client_gone = True
            log.debug("%s %s: the client left mid-body", self.scope.get("method"), self.scope.get("path"))
            return message
        if message["type"] != "http.request":
            return message
        chunk: bytes = message.get("body", b"")
        self.seen += len(chunk)
        self.body_done = not message.get("more_body", False)
        if self.seen > self.limits.max_bytes:
            return await self.refuse(self.limits._too_large())
        if chunk and not self.depth.feed(chunk):
            limit = self.limits.max_depth
            return await self.refuse(TooDeep(f"the request body nests JSON deeper than {limit} levels"))
        return message

    async def refuse(self, error: GatewayError) -> Message:
        """Answer ``error`` now (unless the app already began), then tell the app the client left."""
        if not self.started and not self.refused:
            self.refused = True
            await self.limits._refuse(self.scope, self._send, error)
        self.refused = True
        return _DISCONNECT

    async def send(self, message: Message) -> None:
        if self.refused and not self.started:
            return  # we answered already: whatever the app says now goes nowhere
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
