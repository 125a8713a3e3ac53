"""Where the outside world reaches us, for links in webhooks sent outside any request.

``settings.public_url`` when configured (the right answer behind a proxy).
Otherwise the address the server is actually listening on, learnt from the ASGI
``server`` entry of the requests it serves: never from the ``Host`` header, which
any caller could set to put their own domain into other accounts' webhooks. As
a last resort, the default ``vidgate serve`` address.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.config import Settings

FALLBACK = "http://127.0.0.1:8000"


class BaseUrl:
    """The remembered base URL (one per app)."""

    def __init__(self) -> None:
        self.seen: str | None = None

    def resolve(self, settings: Settings) -> str:
        return (settings.public_url or self.seen or FALLBACK).rstrip("/")

    def learn(self, scope: Scope) -> None:
        server = scope.get("server")
        if not server or server[1] is None:
            return
        host, port = str(server[0]), int(server[1])
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        scheme = "https" if scope.get("scheme") == "https" else "http"
        default = 443 if scheme == "https" else 80
        self.seen = f"{scheme}://{host}" + ("" if port == default else f":{port}")


class RememberBaseUrl:
    """A pure ASGI middleware feeding ``BaseUrl`` (cheap: one tuple read per request)."""

    def __init__(self, app: ASGIApp, *, memo: BaseUrl) -> None:
        self.app = app
        self.memo = memo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.memo.seen is None:
            self.memo.learn(scope)
        await self.app(scope, receive, send)
