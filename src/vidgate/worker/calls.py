"""Timing and counting every upstream call (``Metrics.upstream_call``), by outcome."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from vidgate.observability.metrics import Metrics
from vidgate.providers.base import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_OUTCOMES: tuple[tuple[type[UpstreamError], str], ...] = (
    (UpstreamRejected, "rejected"),
    (UpstreamAuthError, "auth"),
    (UpstreamRateLimited, "rate_limited"),
    (UpstreamUnavailable, "unavailable"),
    (UpstreamTimeout, "timeout"),
    (UpstreamProtocolError, "protocol_error"),
)


def outcome_of(exc: BaseException) -> str:
    """The metric's word for how an upstream call ended."""
    if isinstance(exc, UpstreamError) and exc.outcome_unknown:
        return "unknown"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return next((word for kind, word in _OUTCOMES if isinstance(exc, kind)), "other")


class UpstreamCalls:
    """``async with calls.timed("fal", "poll"):`` around one upstream call."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics

    @asynccontextmanager
    async def timed(self, provider: str, operation: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        outcome = "ok"
        try:
            yield
        except (UpstreamError, TimeoutError) as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            if self.metrics is not None:
                self.metrics.upstream_call(provider, operation, outcome, time.perf_counter() - started)
