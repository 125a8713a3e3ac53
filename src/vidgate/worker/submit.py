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
2. Each route is tried in the order the model's routing plans (``catalog.routing``:
   ordered, weighted or cheapest, over the routes the operator left enabled), and
   within a route each key of the provider's pool in turn (``worker.key_pool``). The
   attempt is recorded BEFORE it is sent, with the route's provider, upstream model and
   key. A key whose breaker is open is skipped for now, never failed.
3. The answer decides:
   - accepted: the job is ``running``, in one transaction with the attempt;
   - a permanent refusal (bad request, content policy): the job fails and says why;
   - an auth error takes the key out for a while and moves on to the next key, then
     the next route, and fails the job only when nothing else was left to try;
   - provably not accepted and retryable: a 429 moves on to the next key (rate limits
     are per key), a 5xx or a refused connection to the next route; when none is left
     the job is rescheduled with backoff (honouring ``Retry-After``) until its deadline;
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
from vidgate.catalog.models import ModelSpec
from vidgate.catalog.routing import RouteConfig, catalog_config, plan
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.providers.base import (
    Capability,
    Route,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRef,
    UpstreamRejected,
    UpstreamTimeout,
    idempotency_key_for,
)
from vidgate.service.attempts import SubmitAttempts
from vidgate.service.lifecycle import Accepted, JobLifecycle, job_fields
from vidgate.service.routes import RouteSettings
from vidgate.store.attempts import Attempt
from vidgate.worker.adopt import ref_named_by_callback
from vidgate.worker.calls import UpstreamCalls
from vidgate.worker.key_pool import KeyPool, PoolKey
from vidgate.worker.providers import ProviderPool, route_of
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
        attempts: SubmitAttempts,
        catalog: Catalog,
        pool: ProviderPool,
        owner: str,
        *,
        calls: UpstreamCalls | None = None,
        routes: RouteSettings | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.attempts = attempts
        self.catalog = catalog
        self.pool = pool
        self.owner = owner
        self.calls = calls or UpstreamCalls()
        self.routes = routes  # live route settings; the catalog's routing when None

    async def last_error(self, job: Job) -> str | None:
        """The reason the latest refused or unknown attempt gave, for a job that ran out of time."""
        for attempt in reversed(await self.attempts.of_job(job.id)):
            if attempt.error_message:
                return f"{attempt.provider}: {attempt.error_message}"
        return None

    async def submit(self, job: Job) -> None:
        spec = self.catalog.get(job.model)
        config = await self.routes.current(spec) if self.routes is not None else catalog_config(spec)
        routes = self._routes(job, spec, config)
        if not routes:
            reason = self.pool.unavailable_reason(spec, config) or "no upstream available"
            await self.lifecycle.fail(job, self.owner, "no_route", reason)
            return
        if not await self.lifecycle.begin_submit(job, self.owner):
            return
        duplicate_risk = False
        pending = await self.attempts.open_attempt(job.id)
        if pending is not None:
            known = [r for _, r in routes] + [route_of(r) for r in spec.routes]
            settled, duplicate_risk = await self._reconcile(job, pending, known)
            if settled:
                return
            routes = _resend_first(routes, pending)
        prefer = pending.upstream_key if pending is not None else None
        outcome = await self._try_routes(job, routes, duplicate_risk=duplicate_risk, prefer_key=prefer)
        if outcome is None:
            return  # accepted, failed, or waiting to reconcile: already recorded
        await self._retry_later(job, outcome)

    # ------------------------------------------------------------ sending

    def _routes(self, job: Job, spec: ModelSpec, config: RouteConfig) -> list[tuple[int, Route]]:
        """The routes this job tries, in its routing's order, each with its catalog index."""
        planned = plan(spec, config, job.request, seed=job.id, usable=lambda r: self.pool.usable(r.provider))
        return self.pool.routes_for(spec, job.mode, planned)

    async def _try_routes(
        self,
        job: Job,
        routes: Sequence[tuple[int, Route]],
        *,
        duplicate_risk: bool,
        prefer_key: str | None = None,
    ) -> _Outcome | None:
        """One pass over the routes and their keys. ``prefer_key``: after an attempt of
        unknown outcome, its key goes first (an idempotency key is per upstream account)."""
        last: UpstreamError | None = None
        retry_after: float | None = None
        breaker_open = False
        for index, route in routes:
            keys = self.pool.keys(route.provider)
            if keys is None:
                continue
            duration = route.fit_duration(job.request.duration_s)
            if duration is None:
                last = UpstreamRejected(
                    f"no configured upstream can make a {job.request.duration_s} s clip of this model "
                    f"({route.provider} makes at most {max(route.durations)} s)"
                )
                continue
            shape = route.cannot_make(job.request.resolution, job.request.aspect_ratio)
            if shape is not None:
                last = UpstreamRejected(f"no configured upstream can make this model at {shape}")
                continue
            turn, paused = keys.in_turn(self.pool.breaker)
            breaker_open = breaker_open or paused
            turn.sort(key=lambda k: k.label != prefer_key)
            for key in turn:
                error = await self._send(
                    job, keys, key, index, route, duration, duplicate_risk=duplicate_risk
                )
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
                if isinstance(error, UpstreamAuthError):
                    keys.refused(key)  # the next key of the same provider carries on
                    continue
                self.pool.breaker.failure(key.label)
                if not isinstance(error, UpstreamRateLimited):
                    break  # the upstream itself is in trouble, whatever the key: the next route
        if isinstance(last, UpstreamAuthError | UpstreamRejected) and not breaker_open:
            await self.lifecycle.fail(job, self.owner, last.code, last.message, request_id=last.request_id)
            return None
        return _Outcome(last, retry_after, breaker_open)

    async def _send(
        self,
        job: Job,
        keys: KeyPool,
        key: PoolKey,
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
        number = await self.attempts.record(
            job.id,
            provider=route.provider,
            route_index=index,
            upstream_model=model,
            possible_duplicate=duplicate_risk,
            upstream_key=key.label,
        )
        attempt = SubmitAttempt(job.id, number, idempotency_key_for(job.id))
        try:
            async with (
                self.calls.timed(route.provider, "submit"),
                asyncio.timeout(self.pool.submit_timeout(route.provider)),
            ):
                ref = await key.adapter.submit(request, route, attempt)
        except TimeoutError:
            error: UpstreamError = UpstreamTimeout(
                "the upstream did not acknowledge the submission in time", outcome_unknown=True
            )
        except UpstreamError as exc:
            error = exc
        else:
            self.pool.breaker.success(key.label)
            keys.accepted(key)
            accepted = Accepted(route.provider, index, model, ref.id, ref.request_id, ref.state, key.label)
            await self._adopt(job, number, accepted)
            return None
        outcome = "unknown" if error.outcome_unknown else "refused"
        await self.attempts.end(job.id, number, outcome=outcome, code=error.code, message=error.message)
        if error.outcome_unknown:
            if self.calls.metrics is not None:
                self.calls.metrics.unknown_submit_outcome(route.provider)
            log.warning(
                "submit of %s to %s (key %s): outcome unknown (%s); reconciling before any resend",
                job.id,
                route.provider,
                key.label,
                error.message,
                extra=job_fields(job) | {"provider": route.provider, "upstream_key": key.label},
            )
            await self.lifecycle.release(job.id, self.owner, run_at=before_deadline(job, RECONCILE_DELAY_S))
        else:
            log.info(
                "submit of %s to %s (key %s) refused (%s: %s)",
                job.id,
                route.provider,
                key.label,
                error.code,
                error.message,
                extra=job_fields(job) | {"provider": route.provider, "upstream_key": key.label},
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
        ref = UpstreamRef(found.upstream_id, found.request_id, found.state)
        await self._cancel(found.provider, found.upstream_key, ref)

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
        adapter = self.pool.adapter_for(attempt.provider, attempt.upstream_key)
        route = _route_of(attempt, routes)
        if adapter is None or route is None:
            await self.attempts.end(job.id, attempt.number, outcome="unknown")
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
            await self.attempts.end(job.id, attempt.number, outcome="refused", code="not_found_upstream")
            return False, False
        await self.attempts.end(job.id, attempt.number, outcome="unknown")
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
        for attempt in await self.attempts.of_job(job.id):
            if attempt.outcome not in ("pending", "unknown"):
                continue
            adapter = self.pool.adapter_for(attempt.provider, attempt.upstream_key)
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
                    await self._cancel(attempt.provider, attempt.upstream_key, ref)

    async def _cancel(self, provider: str, key: str | None, ref: UpstreamRef) -> None:
        adapter = self.pool.adapter_for(provider, key)
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


def _resend_first(routes: Sequence[tuple[int, Route]], attempt: Attempt) -> list[tuple[int, Route]]:
    """``routes`` with the one ``attempt`` went by first: a re-send after an unknown outcome
    goes where the first one went (same upstream, same idempotency key), when it still may."""
    sent = _route_of(attempt, [r for _, r in routes])
    return sorted(routes, key=lambda planned: planned[1] is not sent)


def _accepted(attempt: Attempt, ref: UpstreamRef) -> Accepted:
    return Accepted(
        attempt.provider,
        attempt.route_index,
        attempt.upstream_model,
        ref.id,
        ref.request_id,
        ref.state,
        attempt.upstream_key,
    )


def _route_of(attempt: Attempt, routes: Sequence[Route]) -> Route | None:
    """The route an attempt went by: found by provider and upstream model, never by place
    (the routing's order may have changed since)."""
    same = [r for r in routes if r.provider == attempt.provider]
    sent = attempt.upstream_model
    return next((r for r in same if sent in (r.model, r.image_model)), same[0] if same else None)
