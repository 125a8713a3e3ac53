"""A job's upstream submission attempts: written down before they are sent, ended with
what the upstream answered, read back to reconcile an answer we never saw.

Upstream submissions are recorded (``store.attempts``) BEFORE they are sent, so a
crash between the upstream's answer and our commit leaves a trace that the next
worker reconciles instead of guessing. Nothing here moves money or a job's state:
the accepted answer, which moves the job to ``running``, is written together with
its transition by ``JobLifecycle.accepted``.
"""

from __future__ import annotations

import logging

from vidgate.clock import utcnow
from vidgate.store import attempts as attempt_store
from vidgate.store import jobs as job_store
from vidgate.store.attempts import Attempt
from vidgate.store.engine import Database

log = logging.getLogger(__name__)


class SubmitAttempts:
    """The attempts of every job, one numbered row per submission sent upstream."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open_attempt(self, job_id: str) -> Attempt | None:
        async with self.db.read() as conn:
            return await attempt_store.open_attempt(conn, job_id)

    async def of_job(self, job_id: str) -> list[Attempt]:
        async with self.db.read() as conn:
            return await attempt_store.of_job(conn, job_id)

    async def record(
        self,
        job_id: str,
        *,
        provider: str,
        route_index: int,
        upstream_model: str | None,
        possible_duplicate: bool = False,
        upstream_key: str | None = None,
    ) -> int:
        """Write down a submission before it is sent; returns its number."""
        async with self.db.transaction() as conn:
            return await attempt_store.start(
                conn,
                job_id=job_id,
                provider=provider,
                route_index=route_index,
                upstream_model=upstream_model,
                possible_duplicate=possible_duplicate,
                at=utcnow(),
                upstream_key=upstream_key,
            )

    async def end(
        self, job_id: str, number: int, *, outcome: str, code: str | None = None, message: str | None = None
    ) -> None:
        """``refused`` (provably not accepted) or ``unknown`` (maybe accepted)."""
        async with self.db.transaction() as conn:
            await attempt_store.end(
                conn, job_id, number, outcome=outcome, at=utcnow(), error_code=code, error_message=message
            )

    async def callback_for_open_attempt(self, job_id: str, provider: str, upstream_id: str) -> bool:
        """A verified callback from ``provider`` names ``upstream_id`` for gateway job ``job_id``
        (from the ``?job=`` on the callback URL), and no job tracks that upstream job yet.

        When the job's latest attempt went to ``provider`` and its outcome is still open
        (the submit answer is pending, or was lost), the upstream id is noted on the
        attempt and the job is made due: the worker's next step adopts that upstream job
        (``Submitter``'s reconciliation) instead of submitting again. True when noted.
        """
        async with self.db.transaction() as conn:
            job = await job_store.get_job(conn, job_id)
            if job is None or job.terminal or job.upstream_id is not None:
                return False
            attempt = await attempt_store.open_attempt(conn, job_id)
            if attempt is None or attempt.provider != provider:
                return False
            if not await attempt_store.note_upstream(conn, job_id, attempt.number, upstream_id):
                return False
            await job_store.wake(conn, job_id, now=utcnow())
        log.info(
            "job %s: a signed %s callback names upstream job %s for attempt %d, whose answer "
            "we have not read; adopting it on the next step",
            job_id,
            provider,
            upstream_id,
            attempt.number,
            extra={"job_id": job_id, "provider": provider, "upstream_id": upstream_id},
        )
        return True
