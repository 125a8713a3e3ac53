"""One pure-ASGI layer for every HTTP request: request id, access log, HTTP metrics.

- ``X-Request-ID`` on every response: the caller's (a proxy's) when it is sane
  (1-128 characters of letters, digits and ``-_.:``), else a fresh one. It replaces
  any id a handler set, so the header, the log line and the caller agree.
- One access log line per request (logger ``vidgate.access``): method, route
  template, status, milliseconds, account id when a handler authenticated the
  caller, request id; as ``extra`` fields too, for the JSON log format.
- ``vidgate_http_requests_total`` and the latency histogram, labelled by dialect
  (from the route's prefix), route template (never the raw path: ids stay out of
  label values), method and status.

It must be the outermost layer (added last), so that answers made by the layers
inside it (rate limiting, body size) are counted and carry the id too.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.observability.metrics import Metrics

log = logging.getLogger("vidgate.access")

HEADER = b"x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED = "<unmatched>"

# Probes and scrapes are logged at DEBUG: a load balancer asks every few seconds.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's request id when it is sane, else a new one."""
    for name, value in headers:
        if name.lower() == HEADER:
            try:
                text = value.decode("ascii").strip()
            except UnicodeDecodeError:
                break
            if _SANE.fullmatch(text):
                return text
            break
    return "req_" + secrets.token_hex(12)


class AccessLayer:
    """See the module docstring. ``dialects`` maps a URL prefix to a dialect name."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Callable[[], Metrics | None],
        dialects: Mapping[str, str],
        on_crash: Callable[[Scope], ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # longest prefix first, so "/thalam/v1" wins over a shorter one
        self.dialects = sorted(
            ((prefix.rstrip("/"), name) for prefix, name in dialects.items()),
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self.on_crash = on_crash
        self._routes: list[tuple[re.Pattern[str], str, frozenset[str] | None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_from(list(scope.get("headers") or []))
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers") or [] if k.lower() != HEADER]
                headers.append((HEADER, rid.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if response_started or self.on_crash is None:
                self._finish(scope, status, started, rid)
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await self.on_crash(scope)(scope, receive, send_with_id)
        self._finish(scope, status, started, rid)

    def _finish(self, scope: Scope, status: int, started: float, rid: str) -> None:
        seconds = time.perf_counter() - started
        route = self._route(scope)
        method = str(scope.get("method", "GET"))
        dialect = self._dialect(route)
        try:
            found = self.metrics()
            if found is not None:
                found.http_request(dialect, route, method, status, seconds)
        except Exception:  # counting must never break an answer
            log.debug("http metric failed", exc_info=True)
        account = _account_of(scope)
        ms = round(seconds * 1000, 1)
        log.log(
            logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO,
            "%s %s %d %.1fms account=%s request_id=%s",
            method,
            route,
            status,
            ms,
            account or "-",
            rid,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "ms": ms,
                "account": account,
                "request_id": rid,
                "dialect": dialect,
            },
        )

    def _route(self, scope: Scope) -> str:
        """The route template of the request (``/v1/videos/{video_id}``), never the raw path."""
        path = str(scope.get("path", ""))
        route = scope.get("route")
        regex, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
        if isinstance(regex, re.Pattern) and isinstance(template, str) and regex.match(path):
            return template
        # Answered before routing (rate limit, body size), or a route of an included router
        # whose own template lacks the router's prefix: match the app's full table.
        method = str(scope.get("method", "GET"))
        fallback = UNMATCHED
        for regex, template, methods in self._table(scope.get("app")):
            if regex.match(path):
                if methods is None or method in methods or (method == "HEAD" and "GET" in methods):
                    return template
                fallback = template if fallback == UNMATCHED else fallback  # 405: the path is known
        return fallback

    def _table(self, app: Any) -> list[tuple[re.Pattern[str], str, frozenset[str] | None]]:
        """Every route of the app with its full template, built once (routes are fixed by then)."""
        if self._routes is None:
            routes = list(getattr(app, "routes", ()))
            try:  # FastAPI keeps included routers nested; this walks them with their prefixes
                from fastapi.routing import iter_route_contexts

                items: list[Any] = list(iter_route_contexts(routes))
            except ImportError:  # pragma: no cover - an older FastAPI has flat routes
                items = routes
            table = []
            for item in items:
                regex, template = getattr(item, "path_regex", None), getattr(item, "path_format", None)
                if isinstance(regex, re.Pattern) and isinstance(template, str):
                    methods = getattr(item, "methods", None)
                    table.append((regex, template, frozenset(methods) if methods else None))
            self._routes = table
        return self._routes

    def _dialect(self, route: str) -> str:
        for prefix, name in self.dialects:
            if route == prefix or route.startswith(prefix + "/"):
                return name
        return "none"


def _account_of(scope: Scope) -> str | None:
    state: Any = scope.get("state")
    principal = state.get("principal") if isinstance(state, dict) else None
    account = getattr(principal, "account_id", None)
    return account if isinstance(account, str) else None
