"""The outbox sender: events become deliveries, deliveries become signed POSTs.

Two steps per pass, each safe with any number of processes:

1. **Fan-out.** Under the outbox cursor's row lock, new ``events`` rows become one
   delivery per destination: the job's own ``webhook_url`` (in its dialect's
   format, else the standard one signed with the account's secret) and each of
   the account's endpoints subscribed to the event type (standard format, signed
   with the endpoint's secret). The body is rendered once, here, so every retry
   sends the same bytes under the same ``webhook-id``.
2. **Delivery.** Due deliveries are leased (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL) and POSTed through the pinned, SSRF-checked client. Every attempt
   is recorded; a failure is retried with exponential backoff and jitter until
   the retry window (at least 24 h) has passed. A delivery that succeeded is never
   sent again by the sender, so a receiver gets each event once per destination.

Deliveries of one job to one destination are sent in event order within a batch;
a dialect's handshake (MiniMax's challenge) runs before the first push of a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate import __version__
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.domain.states import JobStatus
from vidgate.ids import new_id
from vidgate.media.links import MediaLinks
from vidgate.net.urlguard import UrlGuard, pinned_client
from vidgate.observability.metrics import Metrics
from vidgate.store import accounts as account_store
from vidgate.store import delivery as store
from vidgate.store import jobs as job_store
from vidgate.store import webhook_endpoints as endpoint_store
from vidgate.store.delivery import Attempt, Delivery
from vidgate.store.engine import Database
from vidgate.store.events import Event
from vidgate.store.webhook_endpoints import Endpoint
from vidgate.webhooks.config import DeliveryConfig
from vidgate.webhooks.formats import (
    STANDARD,
    DialectHooks,
    SigningError,
    render_for_job,
    sign_headers,
    standard_body,
)

log = logging.getLogger(__name__)

CURSOR = "webhooks"
USER_AGENT = f"vidgate-webhooks/{__version__}"


def _at_event(job: Job, payload: dict[str, Any]) -> Job:
    """The job as it stood when a non-terminal event happened (it may have moved on since)."""
    try:
        status = JobStatus(str(payload.get("status")))
    except ValueError:
        return job
    if status.terminal:
        return job
    progress = payload.get("progress", 0 if status is JobStatus.QUEUED else job.progress)
    return dataclasses.replace(
        job,
        status=status,
        progress=int(progress),
        completed_at=None,
        media=None,
        media_expires_at=None,
        charged_micros=None,
        error_code=None,
        error_message=None,
    )


class OutboxSender:
    """One per process; ``run(stop)`` until the app stops."""

    def __init__(
        self,
        db: Database,
        config: DeliveryConfig,
        *,
        guard: UrlGuard,
        links: Callable[[], MediaLinks],
        hooks: DialectHooks | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.config = config
        self.guard = guard
        self._links = links
        self.hooks = hooks or DialectHooks()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id('snd')}"

    def links(self) -> MediaLinks:
        return self._links()

    async def run(self, stop: asyncio.Event) -> None:
        async with pinned_client(self.guard) as http:
            while not stop.is_set():
                busy = False
                try:
                    fanned = await self.fan_out_once()
                    sent = await self.deliver_once(http)
                    busy = fanned >= self.config.fanout_batch or sent >= self.config.claim_batch
                except Exception:
                    log.exception("webhook sender pass failed; retrying")
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.config.interval_s)

    # ---------------------------------------------------------------- fan-out

    async def fan_out_once(self) -> int:
        """Turn new events into deliveries; returns how many events were fanned out."""
        now = utcnow()
        horizon = now - timedelta(seconds=self.config.cursor_grace_s)
        async with self.db.read() as conn:
            if not await store.outbox_has_work(conn, CURSOR, horizon=horizon):
                return 0
        links = self.links()
        async with self.db.transaction() as conn:
            mark = await store.lock_cursor(conn, CURSOR)
            batch = await store.unseen_events(conn, after=mark, limit=self.config.fanout_batch)
            endpoints: dict[tuple[str, str | None], list[Endpoint]] = {}
            for event in batch:
                await self._fan_out(conn, event, links, endpoints, now)
            await store.mark_seen(conn, [e.id for e in batch])
            await store.advance_cursor(conn, CURSOR, current=mark, horizon=horizon)
        return len(batch)

    async def _fan_out(
        self,
        conn: AsyncConnection,
        event: Event,
        links: MediaLinks,
        endpoints: dict[tuple[str, str | None], list[Endpoint]],
        now: datetime,
    ) -> None:
        """One delivery per destination of ``event``; a renderer that fails skips only its own."""
        job = await job_store.get_job(conn, event.job_id) if event.job_id else None
        view = _at_event(job, event.payload) if job is not None else None
        common = {
            "event_id": event.id, "event_public_id": event.public_id, "event_type": event.type,
            "account_id": event.account_id, "job_id": event.job_id, "status": "pending", "attempts": 0,
            "window_started_at": now, "next_attempt_at": now, "created_at": now, "updated_at": now,
        }  # fmt: skip
        if job is not None and view is not None and job.webhook_url:
            key = await account_store.key_by_id(conn, job.key_id)
            secret_hash = key.secret_hash if key else ""
            try:
                rendered = render_for_job(
                    self.hooks, view, event.type, event.created_at, event.payload, links, secret_hash
                )
            except Exception:  # a dialect's renderer must not stall the outbox
                log.exception("rendering the %s webhook of %s failed", event.type, job.id)
                rendered = None
            if rendered is not None:
                await store.insert_delivery(
                    conn, id=new_id("whdel"), mode=job.mode, destination="job", endpoint_id=None,
                    url=job.webhook_url, format=rendered.format, body=rendered.body,
                    headers=rendered.headers, **common,
                )  # fmt: skip
        mode = job.mode if job is not None else None
        if (event.account_id, mode) not in endpoints:
            endpoints[event.account_id, mode] = await endpoint_store.endpoints_of(
                conn, event.account_id, mode
            )
        wanted = [ep for ep in endpoints[event.account_id, mode] if ep.wants(event.type)]
        if not wanted:
            return
        try:
            body = standard_body(view, event.type, event.created_at, event.payload, links).decode()
        except Exception:
            log.exception("rendering the %s webhook of event %s failed", event.type, event.public_id)
            return
        for endpoint in wanted:
            await store.insert_delivery(
                conn, id=new_id("whdel"), mode=endpoint.mode, destination=endpoint.id,
                endpoint_id=endpoint.id, url=endpoint.url, format=STANDARD, body=body, headers={},
                **common,
            )  # fmt: skip

    # --------------------------------------------------------------- delivery

    async def deliver_once(self, http: httpx.AsyncClient) -> int:
        """Claim due deliveries and send them; returns how many were claimed."""
        now = utcnow()
        async with self.db.read() as conn:
            if not await store.deliveries_due(conn, now=now):
                return 0
        until = now + timedelta(seconds=self.config.lease_s)
        async with self.db.transaction() as conn:
            claimed = await store.claim_due(
                conn, owner=self.owner, now=now, until=until, limit=self.config.claim_batch
            )
        groups: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in claimed:
            groups.setdefault((delivery.job_id or delivery.id, delivery.destination), []).append(delivery)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def run_group(items: list[Delivery]) -> None:
            async with gate:
                for item in items:
                    try:
                        await self._deliver(http, item)
                    except Exception:
                        log.exception("delivery %s failed unexpectedly", item.id)

        await asyncio.gather(*(run_group(items) for items in groups.values()))
        return len(claimed)

    async def _deliver(self, http: httpx.AsyncClient, delivery: Delivery) -> None:
        if delivery.destination == "job" and delivery.format != STANDARD:
            verified = await self._handshake(http, delivery)
            if not verified:
                await self._close(delivery, "skipped", "the callback URL did not answer the handshake")
                return
        headers = httpx.Headers({"content-type": "application/json", "user-agent": USER_AGENT})
        headers.update(delivery.headers)  # a dialect's own headers win, whatever their case
        body = delivery.body.encode()
        started = utcnow()
        if delivery.format == STANDARD:
            secret = await self._secret(delivery)
            if secret is None:
                await self._close(delivery, "canceled", "the endpoint was deleted")
                return
            try:
                headers.update(sign_headers(secret, delivery.event_public_id, body, at=started))
            except SigningError as exc:
                failed = Attempt(delivery.id, 0, started, 0, None, False, str(exc), None)
                await self._record(delivery, failed, permanent=True)
                return
        attempt = await self._post(http, delivery, body, headers, started)
        await self._record(delivery, attempt)

    async def _secret(self, delivery: Delivery) -> str | None:
        async with self.db.read() as conn:
            if delivery.endpoint_id is not None:
                return await endpoint_store.endpoint_secret(conn, delivery.endpoint_id)
            return await endpoint_store.account_webhook_secret(conn, delivery.account_id)

    async def _post(
        self,
        http: httpx.AsyncClient,
        delivery: Delivery,
        body: bytes,
        headers: httpx.Headers,
        started: datetime,
    ) -> Attempt:
        clock = time.monotonic()
        code: int | None = None
        excerpt: str | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.config.attempt_timeout_s):
                async with http.stream("POST", delivery.url, content=body, headers=headers) as response:
                    code = response.status_code
                    excerpt = await _excerpt(response, self.config.response_excerpt_bytes)
        except TimeoutError:
            error = f"no complete answer within {self.config.attempt_timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ok = code is not None and 200 <= code < 300
        if code is not None and not ok:
            error = f"the receiver answered HTTP {code}"
        duration = int((time.monotonic() - clock) * 1000)
        return Attempt(delivery.id, delivery.attempts + 1, started, duration, code, ok, error, excerpt)

    async def _record(self, delivery: Delivery, attempt: Attempt, *, permanent: bool = False) -> None:
        now = utcnow()
        if attempt.succeeded:
            status, next_at = "succeeded", None
        else:
            next_at = (
                None
                if permanent
                else self.config.retry.next_attempt(
                    attempts=delivery.attempts + 1, window_started_at=delivery.window_started_at, now=now
                )
            )
            status = "pending" if next_at is not None else "failed"
        async with self.db.transaction() as conn:
            kept = await store.record_attempt(
                conn,
                delivery,
                owner=self.owner,
                attempt=attempt,
                status=status,
                next_attempt_at=next_at,
                now=now,
            )
        if not kept:
            log.warning("delivery %s: lease lost before its attempt was recorded", delivery.id)
            return
        outcome = "retrying" if status == "pending" else status
        if self.metrics is not None:
            self.metrics.webhook_delivery(outcome)
        _log_outcome(delivery, outcome, attempt.status_code, attempt.error)

    async def _close(self, delivery: Delivery, status: str, reason: str) -> None:
        async with self.db.transaction() as conn:
            await store.close_delivery(
                conn, delivery.id, owner=self.owner, status=status, reason=reason, now=utcnow()
            )
        if self.metrics is not None:
            self.metrics.webhook_delivery(status)
        _log_outcome(delivery, status, None, reason)

    async def _handshake(self, http: httpx.AsyncClient, delivery: Delivery) -> bool:
        """Run (once per job) the dialect's challenge; True when pushes may go out."""
        shake = self.hooks.handshake(delivery.format)
        if delivery.job_id is None or shake is None:
            return True
        async with self.db.read() as conn:
            known = await store.handshake_of(conn, delivery.job_id)
        if known is not None:
            return known.verified
        spec = shake(delivery.url)
        if spec is None:
            return True
        challenge, verify = spec
        verified, detail = False, ""
        try:
            async with asyncio.timeout(self.config.handshake_timeout_s):
                async with http.stream(
                    "POST",
                    delivery.url,
                    content=challenge,
                    headers={"content-type": "application/json", "user-agent": USER_AGENT},
                ) as response:
                    answer = await _read_capped(response, 65536)
            verified = 200 <= response.status_code < 300 and bool(verify(answer))
            detail = f"HTTP {response.status_code}" + ("" if verified else ", challenge not echoed")
        except TimeoutError:
            detail = f"no answer within {self.config.handshake_timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 (network errors, a verifier choking on garbage)
            detail = f"{type(exc).__name__}: {exc}"
        async with self.db.transaction() as conn:
            await store.save_handshake(
                conn, job_id=delivery.job_id, url=delivery.url, verified=verified, detail=detail, now=utcnow()
            )
            known = await store.handshake_of(conn, delivery.job_id)
        return known.verified if known is not None else verified


def _log_outcome(delivery: Delivery, outcome: str, code: int | None, error: str | None) -> None:
    """One line per delivery attempt, with the job's fields for the JSON log."""
    level = logging.INFO if outcome == "succeeded" else logging.WARNING
    log.log(
        level,
        "webhook %s %s to %s: %s%s",
        delivery.event_type,
        delivery.event_public_id,
        "the job's URL" if delivery.destination == "job" else f"endpoint {delivery.destination}",
        outcome,
        f" ({error})" if error else (f" (HTTP {code})" if code is not None else ""),
        extra={
            "job_id": delivery.job_id,
            "account": delivery.account_id,
            "delivery_id": delivery.id,
            "attempt": delivery.attempts + (0 if outcome in ("skipped", "canceled") else 1),
        },
    )


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


async def _excerpt(response: httpx.Response, limit: int) -> str:
    """The start of a receiver's answer, as text, for the delivery log."""
    return (await _read_capped(response, limit)).decode("utf-8", "replace")
