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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.billing import holds
from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec
from vidgate.catalog.pricing import Quote, quote, settle_amount
from vidgate.catalog.validation import normalize
from vidgate.clock import utcnow
from vidgate.domain.job import Job, MediaInfo, Principal
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus
from vidgate.errors import Conflict, ModelUnavailable, NotFound
from vidgate.ids import new_job_id
from vidgate.media.keys import job_prefix
from vidgate.media.storage import Storage
from vidgate.store import accounts as account_store
from vidgate.store import events as event_store
from vidgate.store import jobs as job_store
from vidgate.store.engine import Database

EVENT_OF_STATUS = {
    JobStatus.SUCCEEDED: "video.completed",
    JobStatus.FAILED: "video.failed",
    JobStatus.EXPIRED: "video.expired",
    JobStatus.CANCELED: "video.canceled",
}


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


async def _no_guard(url: str, param: str) -> None:
    return None


class JobService:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        storage: Storage,
        *,
        job_timeout_s: int,
        availability: Availability,
        wake_worker: Callable[[], None] = lambda: None,
        url_guard: UrlGuard = _no_guard,
        retention_days: int = 7,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.storage = storage
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
        for image in req.images:
            await self.url_guard(image.url, "image_url")
        if req.webhook_url:
            await self.url_guard(req.webhook_url, "webhook_url")
        request_hash = _hash_request(dialect, req)
        if idempotency is not None:
            existing = await self._replay(principal, idempotency, request_hash)
            if existing is not None:
                return Submitted(existing, created=False)
        now = utcnow()
        job_id = job_id or new_job_id()
        timeout = spec.timeout_s or self.job_timeout_s
        try:
            async with self.db.transaction() as conn:
                await job_store.insert_job(
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
        except IntegrityError:
            # A concurrent duplicate with the same idempotency key won the insert.
            if idempotency is None:
                raise
            existing = await self._replay(principal, idempotency, request_hash)
            if existing is None:
                raise
            return Submitted(existing, created=False)
        self.wake_worker()
        job = await self.get(principal, job_id)
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
        if job.mode != principal.mode or _stored_hash(job, request_hash) != request_hash:
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

    # -------------------------------------------------------------- read

    async def get(self, principal: Principal, job_id: str) -> Job:
        async with self.db.read() as conn:
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

    # ----------------------------------------------------- terminal states

    async def finish(
        self,
        conn: AsyncConnection,
        job: Job,
        target: JobStatus,
        *,
        now: datetime,
        lease_owner: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        media: MediaInfo | None = None,
        **values: Any,
    ) -> bool:
        """End ``job`` in ``target`` with its settlement and event, in the caller's transaction.

        Returns False (and changes nothing) if the job had already moved on.
        """
        capture = 0
        if target is JobStatus.SUCCEEDED:
            spec = self.catalog.get(job.model)
            capture = settle_amount(
                spec,
                job.request,
                delivered_duration_s=media.duration_s if media else None,
                held_micros=job.held_micros,
            )
            account = await account_store.account_by_id(conn, job.account_id)
            keep_days = account.retention_days if account and account.retention_days else self.retention_days
            values.update(
                progress=100,
                media=media.to_json() if media else None,
                media_expires_at=now + timedelta(days=keep_days),
            )
        changed = await job_store.transition(
            conn,
            job.id,
            target,
            now=now,
            lease_owner=lease_owner,
            charged_micros=capture if target is JobStatus.SUCCEEDED else None,
            error_code=error_code,
            error_message=error_message,
            **values,
        )
        if not changed:
            return False
        await holds.settle(conn, job, capture=capture, at=now)
        payload: dict[str, Any] = {"status": target.value}
        if error_message:
            payload["error"] = {"code": error_code, "message": error_message}
        await event_store.append_event(
            conn,
            account_id=job.account_id,
            job_id=job.id,
            type=EVENT_OF_STATUS[target],
            payload=payload,
            at=now,
        )
        return True

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        job = await self.get(principal, job_id)
        if job.terminal:
            raise Conflict(f"video {job_id!r} has already ended ({job.status.value})", code="invalid_state")
        now = utcnow()
        async with self.db.transaction() as conn:
            fresh = await job_store.get_job(conn, job_id)
            assert fresh is not None
            done = await self.finish(
                conn,
                fresh,
                JobStatus.CANCELED,
                now=now,
                error_code="canceled",
                error_message="canceled by the caller",
                # Still due: the worker (the only caller of providers) cancels it upstream.
                run_at=now if fresh.upstream_id else None,
            )
        if not done:
            raise Conflict(f"video {job_id!r} ended before it could be canceled", code="invalid_state")
        return await self.get(principal, job_id)

    async def mark_deleted(self, principal: Principal, job_id: str) -> Job:
        """Cancel if still running (releasing the hold), then hide the job from reads."""
        job = await self.get(principal, job_id)
        now = utcnow()
        async with self.db.transaction() as conn:
            if not job.terminal:
                fresh = await job_store.get_job(conn, job_id)
                assert fresh is not None
                await self.finish(
                    conn,
                    fresh,
                    JobStatus.CANCELED,
                    now=now,
                    error_code="deleted",
                    error_message="deleted by the caller",
                )
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


def _stored_hash(job: Job, fallback: str) -> str:
    return _hash_request(job.dialect, job.request)
