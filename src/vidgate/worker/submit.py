"""Submitting a job upstream: ride through transient trouble, never lose track of upstream work.

One submit step, for a job that is ``queued`` or ``submitting``:

1. An earlier attempt whose outcome is unknown (sent, then a timeout, a reset, an
   unreadable answer, or a worker that died before recording the answer) is
   reconciled first: adopted when a verified upstream callback named its upstream
   job (``worker/adopt.py``) or the upstream can find it (``Capability.FIND``);
   re-sent under the same idempotency key when the upstream honours one
   (``Capability.IDEMPOTENT_SUBMIT``), which returns the same upstream job; and
   only otherwise sent again and counted as a possible duplicate, with the job id
   in the log line.
2. Each route is tried in order. The attempt is recorded BEFORE it is sent. A route
   whose breaker is open is skipped for now, never failed.
3. The answer decides:
   - accepted: the job is ``running``, in one transaction with the attempt;
   - a permanent refusal (bad request, content policy): the job fails and says why;
     an auth error moves on to the next route and fails the job only on the last;
   - provably not accepted and retryable (429, 5xx, a refused connection): the next
     route, and when none is left the job is rescheduled with backoff (honouring
     ``Retry-After``) until its deadline;
   - unknown: the attempt is marked unknown and the job comes back soon to reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from vidgate.catalog.loader import Catalog
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.providers.base import (
    Capability,
    ProviderAdapter,
    Route,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRef,
    UpstreamRejected,
    UpstreamTimeout,
    idempotency_key_for,
)
from vidgate.service.lifecycle import Accepted, JobLifecycle, job_fields
from vidgate.store.attempts import Attempt
from vidgate.worker.adopt import ref_named_by_callback
from vidgate.worker.calls import UpstreamCalls
from vidgate.worker.providers import ProviderPool
from vidgate.worker.schedule import before_deadline, next_poll_delay, retry_delay

log = logging.getLogger(__name__)

RECONCILE_DELAY_S = 1.0  # an unknown outcome is looked at again this soon


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one pass over the routes came to, when nothing was accepted."""

    error: UpstreamError | None
    retry_after_s: float | None
    breaker_open: bool


class Submitter:
    def __init__(
        self,
        lifecycle: JobLifecycle,
        catalog: Catalog,
        pool: ProviderPool,
        owner: str,
        *,
        calls: UpstreamCalls | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.catalog = catalog
        self.pool = pool
        self.owner = owner
        self.calls = calls or UpstreamCalls()

    async def last_error(self, job: Job) -> str | None:
        """The reason the latest refused or unknown attempt gave, for a job that ran out of time."""
        for attempt in reversed(await self.lifecycle.attempts(job.id)):
            if attempt.error_message:
                return f"{attempt.provider}: {attempt.error_message}"
        return None

    async def submit(self, job: Job) -> None:
        spec = self.catalog.get(job.model)
        routes = self.pool.routes_for(spec, job.mode)
        if not routes:
            reason = self.pool.unavailable_reason(spec) or "no upstream available"
            await self.lifecycle.fail(job, self.owner, "no_route", reason)
            return
        if not await self.lifecycle.begin_submit(job, self.owner):
            return
        duplicate_risk = False
        pending = await self.lifecycle.open_attempt(job.id)
        if pending is not None:
            settled, duplicate_risk = await self._reconcile(job, pending, routes)
            if settled:
                return
        outcome = await self._try_routes(job, routes, duplicate_risk=duplicate_risk)
        if outcome is None:
            return  # accepted, failed, or waiting to reconcile: already recorded
        await self._retry_later(job, outcome)

    # ------------------------------------------------------------ sending

    async def _try_routes(
        self, job: Job, routes: Sequence[Route], *, duplicate_risk: bool
    ) -> _Outcome | None:
        last: UpstreamError | None = None
        retry_after: float | None = None
        breaker_open = False
        for index, route in enumerate(routes):
            adapter = self.pool.adapter(route.provider)
            if adapter is None:
                continue
            if not self.pool.breaker.allows(route.provider):
                breaker_open = True
                continue
            duration = route.fit_duration(job.request.duration_s)
            if duration is None:
                last = UpstreamRejected(
                    f"no configured upstream can make a {job.request.duration_s} s clip of this model "
                    f"({route.provider} makes at most {max(route.durations)} s)"
                )
                continue
            error = await self._send(job, adapter, index, route, duration, duplicate_risk=duplicate_risk)
            if error is None:
                return None
            duplicate_risk = False
            if error.outcome_unknown:
                return None  # recorded as unknown; reconciled on the next step
            if isinstance(error, UpstreamRejected):
                await self.lifecycle.fail(
                    job, self.owner, error.code, error.message, request_id=error.request_id
                )
                return None
            last = error
            if error.retry_after_s is not None:
                retry_after = max(retry_after or 0.0, error.retry_after_s)
            if not isinstance(error, UpstreamAuthError):
                self.pool.breaker.failure(route.provider)
        if isinstance(last, UpstreamAuthError | UpstreamRejected) and not breaker_open:
            await self.lifecycle.fail(job, self.owner, last.code, last.message, request_id=last.request_id)
            return None
        return _Outcome(last, retry_after, breaker_open)

    async def _send(
        self,
        job: Job,
        adapter: ProviderAdapter,
        index: int,
        route: Route,
        duration: int | None,
        *,
        duplicate_risk: bool,
    ) -> UpstreamError | None:
        """Record, send, and record the answer of one attempt; the error, or None if accepted."""
        request = job.request
        if duration != request.duration_s:
            request = request.model_copy(update={"duration_s": duration})
        model = route.image_model if job.request.first_frame and route.image_model else route.model
        number = await self.lifecycle.record_attempt(
            job,
            provider=route.provider,
            route_index=index,
            upstream_model=model,
            possible_duplicate=duplicate_risk,
        )
        attempt = SubmitAttempt(job.id, number, idempotency_key_for(job.id))
        try:
            async with (
                self.calls.timed(route.provider, "submit"),
                asyncio.timeout(self.pool.submit_timeout(route.provider)),
            ):
                ref = await adapter.submit(request, route, attempt)
        except TimeoutError:
            error: UpstreamError = UpstreamTimeout(
                "the upstream did not acknowledge the submission in time", outcome_unknown=True
            )
        except UpstreamError as exc:
            error = exc
        else:
            self.pool.breaker.success(route.provider)
            await self._adopt(
                job, number, Accepted(route.provider, index, model, ref.id, ref.request_id, ref.state)
            )
            return None
        outcome = "unknown" if error.outcome_unknown else "refused"
        await self.lifecycle.end_attempt(
            job.id, number, outcome=outcome, code=error.code, message=error.message
        )
        if error.outcome_unknown:
            if self.calls.metrics is not None:
                self.calls.metrics.unknown_submit_outcome(route.provider)
            log.warning(
                "submit of %s to %s: outcome unknown (%s); reconciling before any resend",
                job.id,
                route.provider,
                error.message,
                extra=job_fields(job) | {"provider": route.provider},
            )
            await self.lifecycle.release(job.id, self.owner, run_at=before_deadline(job, RECONCILE_DELAY_S))
        else:
            log.info(
                "submit of %s to %s refused (%s: %s)",
                job.id,
                route.provider,
                error.code,
                error.message,
                extra=job_fields(job) | {"provider": route.provider},
            )
        return error

    async def _adopt(self, job: Job, number: int, found: Accepted) -> None:
        """The job now runs upstream as ``found``; if it ended meanwhile, cancel that upstream job."""
        if await self.lifecycle.accepted(job, self.owner, number, found):
            first_look = utcnow() + timedelta(seconds=next_poll_delay(None, 0))
            await self.lifecycle.release(job.id, self.owner, run_at=first_look)
            return
        log.info(
            "job %s ended while it was being submitted; canceling %s upstream", job.id, found.upstream_id
        )
        await self._cancel(found.provider, UpstreamRef(found.upstream_id, found.request_id, found.state))

    async def _retry_later(self, job: Job, outcome: _Outcome) -> None:
        """Nothing took the job this time: come back with backoff, until the deadline says why."""
        delay = retry_delay(job.attempts, outcome.retry_after_s, cap_s=15.0)
        if outcome.breaker_open and outcome.error is None:
            delay = max(delay, self.pool.breaker.cooldown_s / 4)
        why = outcome.error.message if outcome.error else "every route is paused after repeated failures"
        log.info("submit of %s will be retried in %.1f s (%s)", job.id, delay, why, extra=job_fields(job))
        await self.lifecycle.release(job.id, self.owner, run_at=before_deadline(job, delay))

    # -------------------------------------------------------- reconciling

    async def _reconcile(self, job: Job, attempt: Attempt, routes: Sequence[Route]) -> tuple[bool, bool]:
        """Settle an attempt of unknown outcome: (handled, send again as a possible duplicate)."""
        adapter = self.pool.adapter(attempt.provider)
        route = _route_of(attempt, routes)
        if adapter is None or route is None:
            await self.lifecycle.end_attempt(job.id, attempt.number, outcome="unknown")
            return False, True
        try:
            named = await ref_named_by_callback(
                adapter, attempt, route, calls=self.calls, timeout_s=self.pool.call_timeout(attempt.provider)
            )
        except (UpstreamError, TimeoutError) as exc:
            log.info("could not confirm %s's upstream job at %s yet (%s)", job.id, attempt.provider, exc)
            await self.lifecycle.release(
                job.id, self.owner, run_at=before_deadline(job, RECONCILE_DELAY_S * 2)
            )
            return True, False
        if named is not None:
            log.info("job %s: adopted upstream job %s, named by a signed callback", job.id, named.id)
            await self._adopt(job, attempt.number, _accepted(attempt, named))
            return True, False
        if Capability.FIND in adapter.capabilities:
            probe = SubmitAttempt(job.id, attempt.number, idempotency_key_for(job.id))
            try:
                async with (
                    self.calls.timed(attempt.provider, "find"),
                    asyncio.timeout(self.pool.call_timeout(attempt.provider)),
                ):
                    ref = await adapter.find(probe, route)
            except (UpstreamError, TimeoutError) as exc:
                log.info("could not look %s up at %s yet (%s)", job.id, attempt.provider, exc)
                await self.lifecycle.release(
                    job.id, self.owner, run_at=before_deadline(job, RECONCILE_DELAY_S * 2)
                )
                return True, False
            if ref is not None:
                log.info("job %s: adopted upstream job %s from attempt %d", job.id, ref.id, attempt.number)
                await self._adopt(job, attempt.number, _accepted(attempt, ref))
                return True, False
            await self.lifecycle.end_attempt(
                job.id, attempt.number, outcome="refused", code="not_found_upstream"
            )
            return False, False
        await self.lifecycle.end_attempt(job.id, attempt.number, outcome="unknown")
        if Capability.IDEMPOTENT_SUBMIT in adapter.capabilities:
            return False, False  # the same key brings back the same upstream job
        if self.calls.metrics is not None:
            self.calls.metrics.possible_duplicate(attempt.provider)
        log.warning(
            "job %s: attempt %d at %s may have created an upstream job that cannot be looked up; "
            "submitting again (possible duplicate)",
            job.id,
            attempt.number,
            attempt.provider,
            extra=job_fields(job) | {"provider": attempt.provider, "possible_duplicate": True},
        )
        return False, True

    async def cancel_orphans(self, job: Job) -> None:
        """A job ended: cancel upstream jobs its unknown attempts may have created, where possible."""
        for attempt in await self.lifecycle.attempts(job.id):
            if attempt.outcome not in ("pending", "unknown"):
                continue
            adapter = self.pool.adapter(attempt.provider)
            if adapter is None or not {Capability.FIND, Capability.CANCEL} <= adapter.capabilities:
                continue
            route = Route(attempt.provider, attempt.upstream_model or "")
            with contextlib.suppress(UpstreamError, TimeoutError):
                async with (
                    self.calls.timed(attempt.provider, "find"),
                    asyncio.timeout(self.pool.call_timeout(attempt.provider)),
                ):
                    ref = await adapter.find(
                        SubmitAttempt(job.id, attempt.number, idempotency_key_for(job.id)), route
                    )
                if ref is not None and ref.id != job.upstream_id:
                    await self._cancel(attempt.provider, ref)

    async def _cancel(self, provider: str, ref: UpstreamRef) -> None:
        adapter = self.pool.adapter(provider)
        if adapter is None or Capability.CANCEL not in adapter.capabilities:
            return
        try:
            async with (
                self.calls.timed(provider, "cancel"),
                asyncio.timeout(self.pool.call_timeout(provider)),
            ):
                await adapter.cancel(ref)
        except (UpstreamError, TimeoutError) as exc:
            log.info("upstream cancel of %s at %s failed (%s)", ref.id, provider, exc)


def _accepted(attempt: Attempt, ref: UpstreamRef) -> Accepted:
    return Accepted(
        attempt.provider, attempt.route_index, attempt.upstream_model, ref.id, ref.request_id, ref.state
    )


def _route_of(attempt: Attempt, routes: Sequence[Route]) -> Route | None:
    if attempt.route_index < len(routes) and routes[attempt.route_index].provider == attempt.provider:
        return routes[attempt.route_index]
    return next((r for r in routes if r.provider == attempt.provider), None)
