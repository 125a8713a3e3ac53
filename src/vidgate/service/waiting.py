"""Waiting on a job without polling: until it ends, until it changes, or for a while.

``job_version(job)`` is a short token of everything a reader can see change on a job
(state, progress, outcome, media): the native API's ETag and the events stream's
event id. ``wait_for`` registers with ``store.changes`` BEFORE it reads the job, so a
change committed between the read and the wait is not slept through; it then sleeps
on the job's wake-up (no CPU, no database connection held) and re-reads the job
once per wake-up. When wake-ups may not come (``JobChanges.instant`` is False: the
PostgreSQL listener is reconnecting, or another process writes this SQLite file) it
re-reads every ``FALLBACK_RECHECK_S`` instead, and it never waits past its deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

from vidgate.domain.job import Job, Principal
from vidgate.errors import ServiceUnavailable
from vidgate.service.jobs import JobService
from vidgate.store.changes import JobChanges

log = logging.getLogger(__name__)

MAX_WAIT_S = 60


def job_version(job: Job) -> str:
    """A token that changes whenever what a reader sees of the job changes (cheap: no body hash).

    Signed media URLs are re-signed on every read; they name the same bytes, so they
    are not part of it (which is why the ETag is weak).
    """
    seen = (
        job.status.value,
        job.progress,
        job.provider or "",
        job.error_code or "",
        job.completed_at.isoformat() if job.completed_at else "",
        job.media_deleted_at.isoformat() if job.media_deleted_at else "",
        job.media.video_key if job.media else "",
    )
    return hashlib.blake2b(repr(seen).encode(), digest_size=9).hexdigest()


def until_terminal(job: Job) -> bool:
    return job.terminal


def until_changed_from(version: str) -> Callable[[Job], bool]:
    """Done when the job is terminal or its version differs from ``version``."""

    def done(job: Job) -> bool:
        return job.terminal or job_version(job) != version

    return done


async def wait_for(
    jobs: JobService,
    changes: JobChanges,
    principal: Principal,
    job_id: str,
    done: Callable[[Job], bool],
    *,
    timeout_s: float,
) -> Job:
    """The job once ``done(job)`` holds, or as it is after ``timeout_s`` (at most 60 s).

    A job that disappears meanwhile (deleted) raises ``NotFound`` as a read would.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(timeout_s, MAX_WAIT_S)
    with changes.watch(job_id) as watch:
        job = await jobs.get(principal, job_id)
        while not done(job) and not changes.closed:
            left = deadline - loop.time()
            if left <= 0:
                break
            await watch.changed(left)
            try:
                job = await jobs.get(principal, job_id)
            except ServiceUnavailable:
                # The database is away (restarting): keep what we have and try again on
                # the next wake-up or fallback re-read; the deadline still holds.
                log.info("re-reading job %s failed; the database is unavailable", job_id)
    return job
