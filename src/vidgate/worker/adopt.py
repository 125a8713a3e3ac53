"""Adopting an upstream job that a verified callback named, for an attempt whose submit
answer was lost (upstreams without ``FIND``, such as fal).

The callback path (``SubmitAttempts.callback_for_open_attempt``) notes the upstream id on
the open attempt; the worker's reconciliation asks the adapter for a pollable reference
(``ref_from_callback``) and polls it once with our own credentials before adopting it,
so a callback replayed onto another job's URL cannot attach a stranger's upstream job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from vidgate.providers.base import ProviderAdapter, Route, UpstreamError, UpstreamRef
from vidgate.store.attempts import Attempt
from vidgate.worker.calls import UpstreamCalls

log = logging.getLogger(__name__)


async def ref_named_by_callback(
    adapter: ProviderAdapter, attempt: Attempt, route: Route, *, calls: UpstreamCalls, timeout_s: float
) -> UpstreamRef | None:
    """The upstream job to adopt for ``attempt``, or None (then reconcile as before).

    Raises ``UpstreamError`` (retryable) or ``TimeoutError`` when the confirming poll
    could not be made now: the caller tries again shortly.
    """
    if attempt.upstream_id is None:
        return None
    sent_to = dataclasses.replace(route, model=attempt.upstream_model or route.model, image_model=None)
    ref = adapter.ref_from_callback(attempt.upstream_id, sent_to)
    if ref is None:
        return None
    try:
        async with calls.timed(attempt.provider, "poll"), asyncio.timeout(timeout_s):
            await adapter.poll(ref)
    except UpstreamError as exc:
        if exc.retryable:
            raise
        log.warning(
            "job %s: %s does not answer for upstream job %s, named by a callback (%s); not adopting it",
            attempt.job_id,
            attempt.provider,
            attempt.upstream_id,
            exc.message,
        )
        return None
    return ref
