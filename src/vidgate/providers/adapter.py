"""Shared defaults for provider adapters, and ``complete()`` for the minimal ones.

A provider module implements ``MinimalAdapter`` (name, capabilities, submit, poll).
``AdapterBase`` gives every optional method a default (no cancel, no find, no
callbacks, output streamed over the adapter's own client), and the registry passes
each adapter through ``complete()`` so the worker always sees a full
``ProviderAdapter``. Kept apart from ``base`` because the default output streaming
uses ``http``, which itself builds on ``base``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from vidgate.domain.request import GenerationRequest
from vidgate.providers.base import (
    CallbackRequest,
    CallbackResult,
    Capability,
    MinimalAdapter,
    ProviderAdapter,
    ProviderContext,
    Route,
    SubmitAttempt,
    UpstreamOutput,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
)
from vidgate.providers.http import stream_http_output


class AdapterBase:
    """Shared defaults for everything beyond submit and poll.

    Subclasses set ``name`` and ``capabilities`` and implement ``submit`` and
    ``poll``; they override the rest only where their upstream offers it.
    """

    name: str = ""
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self, ctx: ProviderContext) -> None:
        self._ctx = ctx

    async def cancel(self, ref: UpstreamRef) -> None:
        raise UpstreamRejected(f"{self.name} cannot cancel a job upstream")

    async def find(self, attempt: SubmitAttempt, route: Route) -> UpstreamRef | None:
        return None

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        return None

    def ref_from_callback(self, upstream_id: str, route: Route) -> UpstreamRef | None:
        return None

    def challenge_response(self, call: CallbackRequest) -> dict[str, Any] | None:
        return None

    def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_http_output(self._ctx, output)

    async def check(self) -> bool:
        return False


_OPTIONAL = (
    "cancel",
    "find",
    "parse_callback",
    "ref_from_callback",
    "challenge_response",
    "stream_output",
    "check",
)


class _Completed(AdapterBase):
    """A minimal adapter with the shared defaults around it: the optional methods it
    does have are its own, the others are the defaults."""

    def __init__(self, inner: MinimalAdapter, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        self._inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        for method in _OPTIONAL:
            if callable(own := getattr(inner, method, None)):
                setattr(self, method, own)

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        return await self._inner.submit(req, route, attempt)

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        return await self._inner.poll(ref)


def complete(adapter: MinimalAdapter, ctx: ProviderContext) -> ProviderAdapter:
    """``adapter`` itself when it has every optional method, else wrapped in the defaults."""
    if isinstance(adapter, ProviderAdapter):
        return adapter
    return _Completed(adapter, ctx)
