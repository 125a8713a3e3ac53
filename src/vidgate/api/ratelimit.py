"""Rate limits per account, as a pure ASGI middleware on the ``limits`` library.

The caller is the account behind the API key, read in every ``KeyForm`` the
dialects declare (their headers and key prefixes; see ``EdgeRules``). Keys are
mapped to their account and its own ``rate_limit_per_minute`` through the store,
by way of the ``KeyCache`` that authentication reads too (one read per key per
second). A request without a known key passes untouched: authentication refuses it
further in.

Limits: the account's own limit, else ``settings.rate_limit_per_minute`` (0 turns
the default off; an account's explicit limit still applies), plus per-route
limits where a dialect declares them (``RouteLimit``).
Counting uses a moving window, in memory by default and in Redis when
``settings.redis_url`` is set, so that replicas share one count. If Redis is
unreachable the request is let through (and logged): a limiter outage must not
become an API outage.

Every counted response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` (a Unix time), plus a dialect's own names for them under
its prefix (``LimitHeaders``); a refused one is a 429 in the caller's dialect with
``Retry-After``. Nothing here knows a dialect by name.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.api.auth import BEARER, KeyForm
from vidgate.api.context import Services
from vidgate.api.errors import ErrorRouter
from vidgate.api.keycache import key_cache
from vidgate.billing.keys import hash_key, looks_like_key
from vidgate.errors import RateLimited

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """Requests per minute on one route, on top of the account's own limit.

    ``path`` is relative to the declaring dialect's prefix (``/video/queue``).
    """

    method: str
    path: str
    per_minute: int


@dataclass(frozen=True, slots=True)
class LimitHeaders:
    """A dialect's own names for the limit, remaining and reset headers."""

    limit: str
    remaining: str
    reset: str


@dataclass(frozen=True, slots=True)
class EdgeRules:
    """What the limiter learns from the dialects: key forms, route limits, header names."""

    key_forms: tuple[KeyForm, ...] = (BEARER,)
    # (METHOD, absolute path) -> requests per minute
    route_limits: dict[tuple[str, str], int] = field(default_factory=dict)
    # (path prefix, header names), longest prefix first
    limit_headers: tuple[tuple[str, LimitHeaders], ...] = ()

    def headers_for(self, path: str) -> LimitHeaders | None:
        for prefix, names in self.limit_headers:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return names
        return None


def api_key_of(headers: dict[bytes, bytes], forms: tuple[KeyForm, ...] = (BEARER,)) -> str | None:
    """The vidgate key a request carries in any declared form, with its prefix removed."""
    text = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers.items()}
    for form in forms:
        token = form.token(text)
        secret = form.secret(token) if token is not None else None
        if secret is not None and looks_like_key(secret):
            return secret
    return None


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    per_minute: int | None  # the account's own limit (None: the server default)


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    remaining: int
    reset_at: int  # Unix seconds
    allowed: bool


async def caller_of(svc: Services, secret: str) -> Caller | None:
    """The account behind a key (through the shared ``KeyCache``), or None if it cannot call."""
    state = await key_cache(svc.db).state(svc.db, hash_key(secret))
    if state.principal is None or state.inactive:
        return None
    return Caller(state.principal.account_id, state.principal.rate_limit_per_minute)


def storage_for(redis_url: str | None) -> Storage:
    """Memory storage, or the async Redis storage shared by every replica."""
    if not redis_url:
        return MemoryStorage()
    # imported here, once, on the event loop's thread: ``limits`` imports it lazily, racily
    # across threads; and a process without Redis never loads it (memory)
    import redis.asyncio  # noqa: F401

    url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
    storage = storage_from_string(url, key_prefix="vidgate-ratelimit", implementation="redispy")
    if not isinstance(storage, Storage):  # pragma: no cover - an "async+" URL gives an async storage
        raise ValueError(f"{url!r} is not an async rate-limit storage")
    return storage


class RateLimitMiddleware:
    """Counts each authenticated request against its account's (and route's) limits."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        errors: ErrorRouter,
        services: Callable[[], Services | None],
        rules: EdgeRules | None = None,
    ) -> None:
        self.app = app
        self.rules = rules or EdgeRules()
        self.errors = errors
        self.services = services
        self._limiter: MovingWindowRateLimiter | None = None
        self._lock = asyncio.Lock()
        self._last_warning = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        svc = self.services()
        raw_headers = dict(scope.get("headers") or [])
        secret = api_key_of(raw_headers, self.rules.key_forms) if svc is not None else None
        if svc is None or secret is None:
            await self.app(scope, receive, send)
            return
        window = await self._check(svc, secret, scope["method"], scope["path"])
        if window is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(window, self.rules.headers_for(scope["path"]))
        if not window.allowed:
            retry_after = max(1, math.ceil(window.reset_at - time.time()))
            error = RateLimited(
                f"rate limit of {window.limit} requests per minute exceeded; retry in {retry_after} s",
                retry_after_s=retry_after,
                limit=window.limit,
                reset_at=window.reset_at,
            )
            response = self.errors.renderer_for(Request(scope).url.path)(error)
            response.headers.update(headers)
            response.headers["Retry-After"] = str(retry_after)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers") or [])
                raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _check(self, svc: Services, secret: str, method: str, path: str) -> Window | None:
        """Hit every limit that applies; the tightest window, or None when nothing applies."""
        try:
            caller = await caller_of(svc, secret)
            if caller is None:
                return None
            limits = self._limits_for(svc, caller, method, path)
            if not limits:
                return None
            limiter = await self._get_limiter(svc)
            windows: list[Window] = []
            for item, scope_name in limits:
                allowed = await limiter.hit(item, "acct", caller.account_id, scope_name)
                stats = await limiter.get_window_stats(item, "acct", caller.account_id, scope_name)
                window = Window(item.amount, max(0, stats.remaining), math.ceil(stats.reset_time), allowed)
                if not allowed:
                    return window
                windows.append(window)
            return min(windows, key=lambda w: w.remaining)
        except Exception:  # Redis down, or a store hiccup: let the request through
            now = time.monotonic()
            if now - self._last_warning > 30:
                self._last_warning = now
                log.warning("rate limiting is unavailable; requests pass unlimited", exc_info=True)
            return None

    def _limits_for(
        self, svc: Services, caller: Caller, method: str, path: str
    ) -> list[tuple[RateLimitItem, str]]:
        default = svc.settings.rate_limit_per_minute
        per_minute = caller.per_minute if caller.per_minute is not None else default
        found: list[tuple[RateLimitItem, str]] = []
        route = self.rules.route_limits.get((method.upper(), path.rstrip("/") or "/"))
        if route is not None and default > 0:
            found.append((RateLimitItemPerMinute(route), f"{method.upper()} {path}"))
        if per_minute > 0:
            found.append((RateLimitItemPerMinute(per_minute), "*"))
        return found

    async def _get_limiter(self, svc: Services) -> MovingWindowRateLimiter:
        if self._limiter is None:
            async with self._lock:
                if self._limiter is None:
                    self._limiter = MovingWindowRateLimiter(storage_for(svc.settings.redis_url))
        return self._limiter


def _headers(window: Window, own: LimitHeaders | None) -> dict[str, str]:
    headers = {
        "X-RateLimit-Limit": str(window.limit),
        "X-RateLimit-Remaining": str(window.remaining),
        "X-RateLimit-Reset": str(window.reset_at),
    }
    if own is not None:
        headers.update(
            {
                own.limit: str(window.limit),
                own.remaining: str(window.remaining),
                own.reset: str(window.reset_at),
            }
        )
    return headers
