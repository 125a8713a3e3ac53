"""Refusing bodies over the size limit without reading them whole (a pure ASGI middleware)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.api.errors import ErrorRouter
from vidgate.errors import PayloadTooLarge


class _TooLarge(PayloadTooLarge):
    """Raised from ``receive``: the app's GatewayError handler renders it in the dialect."""


class BodySizeLimit:
    """413 as soon as Content-Length, or the bytes actually received, pass ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, errors: ErrorRouter) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(f"the request body is larger than the {self.max_bytes // 2**20} MB limit")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit_mb = self.max_bytes // (1024 * 1024)
        error = PayloadTooLarge(f"the request body is larger than the {limit_mb} MB limit")
        response = self.errors.renderer_for(Request(scope).url.path)(error)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
