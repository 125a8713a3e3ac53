"""JobService: the one door every dialect goes through to create, read and end jobs.

``submit`` validates against the catalog, prices, and then in ONE transaction
inserts the job, places the hold and writes the ``video.queued`` event. ``finish``
(used by the worker and by cancel) moves a job to a terminal state, settles the
hold and writes the event, again in one transaction. Nothing here knows a wire
format, and nothing here talks to an upstream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.billing import holds
from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec
from vidgate.catalog.pricing import Quote, quote
from vidgate.catalog.validation import normalize
from vidgate.clock import utcnow
from vidgate.domain.job import Job, Principal
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus
from vidgate.errors import Conflict, ModelUnavailable, NotFound
from vidgate.ids import new_job_id
from vidgate.media.keys import job_prefix
from vidgate.media.storage import Storage
from vidgate.money import format_usd
from vidgate.net.urlfields import user_urls
from vidgate.service.attempts import SubmitAttempts
from vidgate.service.lifecycle import JobLifecycle, job_fields
from vidgate.store import events as event_store
from vidgate.store import jobs as job_store
from vidgate.store.engine import Database

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A caller's idempotency key, and the scope it is unique in (per dialect rules).

    A key is remembered for 24 hours; after that it may name a new job.
    """

    key: str
    scope: str


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    created: bool  # False when an idempotent replay returned an existing job


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[Job]
    has_more: bool


Availability = Callable[[ModelSpec], str | None]  # None when orderable live, else why not
UrlGuard = Callable[[str, str], Awaitable[None]]  # (url, param) -> raises InvalidRequest


async def _no_guard(url: str, param: str) -> None:  # noqa: ARG001 (the UrlGuard signature)
    return None


class JobService:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        storage: Storage,
        lifecycle: JobLifecycle,
        *,
        job_timeout_s: int,
        availability: Availability,
        wake_worker: Callable[[], None] = lambda: None,
        url_guard: UrlGuard = _no_guard,
        retention_days: int = 7,
        attempts: SubmitAttempts | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.storage = storage
        self.lifecycle = lifecycle
        self.attempts = attempts if attempts is not None else SubmitAttempts(db)
        self.job_timeout_s = job_timeout_s
        self.availability = availability
        self.wake_worker = wake_worker
        self.url_guard = url_guard
        self.retention_days = retention_days

    # ----------------------------------------------------------- pricing

    def prepare(
        self, principal: Principal | None, req: GenerationRequest
    ) -> tuple[ModelSpec, GenerationRequest, Quote]:
        """Resolve, validate and price a request without touching the database."""
        spec = self.catalog.get(req.model)
        if not spec.orderable:
            raise ModelUnavailable(
                f"model {spec.id!r} cannot be ordered: {spec.unavailable_reason}", param="model"
            )
        if principal is not None and principal.mode == "live" and (why := self.availability(spec)):
            raise ModelUnavailable(f"model {spec.id!r} is unavailable: {why}", param="model")
        normalized = normalize(spec, req)
        return spec, normalized, quote(spec, normalized)

    # ------------------------------------------------------------ submit

    async def submit(
        self,
        principal: Principal,
        req: GenerationRequest,
        *,
        dialect: str,
        idempotency: Idempotency | None = None,
        remixed_from: str | None = None,
        job_id: str | None = None,
    ) -> Submitted:
        """Create the job (hold and event in one transaction), or replay an idempotent one.

        ``job_id``: an id the dialect made (``new_job_id``'s shape, e.g. one that carries
        MiniMax's int64 task number); a fresh random one otherwise.
        """
        spec, req, price = self.prepare(principal, req)
        # Every URL anything downstream may fetch, pass-through options included (issue 14).
        for param, url in user_urls(req):
            await self.url_guard(url, param)
        request_hash = _hash_request(dialect, req)
        if idempotency is not None:
            existing = await self._replay(principal, idempotency, request_hash)
            if existing is not None:
                return Submitted(existing, created=False)
        now = utcnow()
        job_id = job_id or new_job_id()
        timeout = spec.timeout_s or self.job_timeout_s

        async def write(conn: AsyncConnection) -> Job:
            job = await job_store.insert_job(
                conn,
                id=job_id,
                account_id=principal.account_id,
                key_id=principal.key_id,
                mode=principal.mode,
                dialect=dialect,
                model=spec.id,
                status=JobStatus.QUEUED.value,
                progress=0,
                request=req.model_dump(mode="json"),
                metadata=req.metadata,
                estimated_micros=price.micros,
                held_micros=price.micros,
                idempotency_scope=idempotency.scope if idempotency else None,
                idempotency_key=idempotency.key if idempotency else None,
                request_hash=request_hash,
                remixed_from=remixed_from,
                webhook_url=req.webhook_url,
                created_at=now,
                updated_at=now,
                deadline_at=now + timedelta(seconds=timeout),
                run_at=now,
            )
            await holds.place_hold(conn, principal, job_id=job_id, amount=price.micros, at=now)
            await event_store.append_event(
                conn,
                account_id=principal.account_id,
                job_id=job_id,
                type="video.queued",
                payload={"status": "queued"},
                at=now,
            )
            return job

        try:
            job = await self.db.run(write)
        except IntegrityError:
            # A concurrent duplicate with the same idempotency key won the insert.
            if idempotency is None:
                raise
            existing = await self._replay(principal, idempotency, request_hash)
            if existing is None:
                raise
            return Submitted(existing, created=False)
        self.wake_worker()
        if self.lifecycle.metrics is not None:
            self.lifecycle.metrics.money(principal.mode, "held", price.micros)
        log.info(
            "job %s accepted: %s via %s, held $%s (%s)",
            job.id,
            job.model,
            dialect,
            format_usd(price.micros),
            principal.mode,
            extra=job_fields(job),
        )
        return Submitted(job, created=True)

    async def _replay(self, principal: Principal, idem: Idempotency, request_hash: str) -> Job | None:
        async with self.db.read() as conn:
            job = await job_store.job_by_idempotency(conn, principal.account_id, idem.scope, idem.key)
        if job is None:
            return None
        if job.created_at < utcnow() - IDEMPOTENCY_WINDOW:
            async with self.db.transaction() as conn:  # the key has lapsed: free it for reuse
                await job_store.update_job(conn, job.id, now=utcnow(), idempotency_key=None)
            return None
        if job.mode != principal.mode or _stored_hash(job) != request_hash:
            raise Conflict(
                "this idempotency key was already used with a different request body",
                code="idempotency_key_reused",
                param="idempotency_key",
            )
        return job

    async def wait_for_ack(self, job: Job, *, timeout_s: float) -> Job:
        """Wait (bounded) until the worker has submitted the job upstream, or it ended.

        Dialects that answer submit-time upstream failures synchronously (502/504)
        use this; everything else returns at once with the queued job.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        delay = 0.02
        while job.status in (JobStatus.QUEUED, JobStatus.SUBMITTING):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)
            async with self.db.read() as conn:
                fresh = await job_store.get_job(conn, job.id)
            if fresh is None:
                break
            job = fresh
        return job

    async def acknowledged_or_abandoned(self, job: Job, *, timeout_s: float) -> Job:
        """For dialects that answer submit-time upstream failures synchronously.

        Waits (bounded) for the upstream to acknowledge the job. A job still unacknowledged
        at the end is canceled, free, with the last upstream error as its reason (or
        ``upstream_timeout`` when none answered), so that the caller can be told it failed
        and nothing is charged; an upstream job it may have created is canceled upstream by
        the worker where the upstream allows.
        """
        job = await self.wait_for_ack(job, timeout_s=timeout_s)
        if job.status not in (JobStatus.QUEUED, JobStatus.SUBMITTING):
            return job
        code, message = "upstream_timeout", "the upstream did not acknowledge the submission in time"
        for attempt in reversed(await self.attempts.of_job(job.id)):
            if attempt.error_code:
                code, message = attempt.error_code, attempt.error_message or message
                break
        await self.lifecycle.finish(
            job.id, JobStatus.CANCELED, error_code=code, error_message=message, run_at=utcnow()
        )
        async with self.db.read() as conn:
            ended = await job_store.get_job(conn, job.id)
        return ended or job

    # -------------------------------------------------------------- read

    async def get(self, principal: Principal, job_id: str) -> Job:
        async with self.db.read(point=True) as conn:
            job = await job_store.get_job(conn, job_id, account_id=principal.account_id)
        if job is None or job.mode != principal.mode:
            raise NotFound(f"no video with id {job_id!r}", param="id")
        return job

    async def list(
        self,
        principal: Principal,
        *,
        limit: int = 20,
        after: str | None = None,
        newest_first: bool = True,
        status: list[str] | None = None,
        model: str | None = None,
        dialect: str | None = None,
    ) -> Page:
        async with self.db.read() as conn:
            cursor = None
            if after:
                cursor = await job_store.get_job(conn, after, account_id=principal.account_id)
                if cursor is None:
                    raise NotFound(f"no video with id {after!r} to page after", param="after")
            rows = await job_store.list_jobs(
                conn,
                principal.account_id,
                principal.mode,
                limit=limit + 1,
                after=cursor,
                newest_first=newest_first,
                status=status,
                model=model,
                dialect=dialect,
            )
        return Page(rows[:limit], has_more=len(rows) > limit)

    async def models_used(self, principal: Principal, *, dialect: str | None = None) -> tuple[str, ...]:
        """Every model the caller has jobs of (in ``dialect``, when given), sorted: what a
        job list's model filter can offer."""
        async with self.db.read() as conn:
            used = await job_store.models_used(conn, principal.account_id, principal.mode, dialect=dialect)
        return tuple(used)

    # ----------------------------------------------------- terminal states

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        job = await self.get(principal, job_id)
        if job.terminal:
            raise Conflict(f"video {job_id!r} has already ended ({job.status.value})", code="invalid_state")
        done = await self.lifecycle.finish(
            job_id,
            JobStatus.CANCELED,
            error_code="canceled",
            error_message="canceled by the caller",
            # Still due: the worker (the only caller of providers) cancels it upstream.
            run_at=utcnow() if job.upstream_id or job.status is JobStatus.SUBMITTING else None,
        )
        if not done:
            raise Conflict(f"video {job_id!r} ended before it could be canceled", code="invalid_state")
        return await self.get(principal, job_id)

    async def mark_deleted(self, principal: Principal, job_id: str) -> Job:
        """Cancel if still running (releasing the hold), then hide the job from reads."""
        job = await self.get(principal, job_id)
        if not job.terminal:
            await self.lifecycle.finish(
                job_id,
                JobStatus.CANCELED,
                error_code="deleted",
                error_message="deleted by the caller",
                run_at=utcnow() if job.upstream_id or job.status is JobStatus.SUBMITTING else None,
            )
        now = utcnow()
        async with self.db.transaction() as conn:
            await job_store.update_job(conn, job_id, now=now, deleted_at=now, media_deleted_at=now)
        if job.media:
            await self.storage.delete_prefix(job_prefix(job.id))
        return job

    async def delete_media(self, principal: Principal, job_id: str, *, keep_bytes: bool = False) -> Job:
        """Forget a finished job's media (the job and its bill stay), and remove the bytes.

        ``keep_bytes=True`` leaves the bytes for the caller to remove with ``remove_media``
        (a response still streaming them removes them once it is sent).
        """
        job = await self.get(principal, job_id)
        async with self.db.transaction() as conn:
            await job_store.update_job(conn, job_id, now=utcnow(), media_deleted_at=utcnow())
        if not keep_bytes:
            await self.remove_media(job.id)
        return job

    async def remove_media(self, job_id: str) -> None:
        """Delete every stored file of a job (idempotent)."""
        await self.storage.delete_prefix(job_prefix(job_id))


def _hash_request(dialect: str, req: GenerationRequest) -> str:
    canonical = json.dumps([dialect, req.model_dump(mode="json")], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored_hash(job: Job) -> str:
    return _hash_request(job.dialect, job.request)
