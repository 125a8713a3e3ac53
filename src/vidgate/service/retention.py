"""Media retention: re-hosted outputs are purged once their time is up, and the job says so.

A job's media expire ``retention_days`` after it completed: the account's own
value when it has one, else the server default (which ``JobService`` already
wrote as ``media_expires_at``). The purger deletes the job's storage prefix
first and then marks ``media_deleted_at``, so a crash in between only means the
delete is repeated (it is idempotent); several processes may purge at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from vidgate.clock import utcnow
from vidgate.media.keys import job_prefix
from vidgate.media.storage import Storage
from vidgate.store import retention as store
from vidgate.store.engine import Database

log = logging.getLogger(__name__)


async def due_for_purge(db: Database, *, now: datetime, limit: int) -> list[str]:
    """Job ids whose media are past retention, accounts' own retention taken into account."""
    async with db.read() as conn:
        overrides = await store.retention_overrides(conn)
        due = await store.media_expired(conn, now=now, skip_accounts=sorted(overrides), limit=limit)
        for account_id, days in sorted(overrides.items()):
            if len(due) >= limit:
                break
            due += await store.media_completed_before(
                conn, account_id=account_id, cutoff=now - timedelta(days=max(0, days)), limit=limit - len(due)
            )
    return due


async def purge_once(
    db: Database, storage: Storage, *, now: datetime | None = None, limit: int = 100
) -> list[str]:
    """Purge one batch; returns the ids of the jobs whose media are now gone."""
    now = now or utcnow()
    purged: list[str] = []
    for job_id in await due_for_purge(db, now=now, limit=limit):
        try:
            await storage.delete_prefix(job_prefix(job_id))
        except Exception:  # storage outage: leave the job as is, try again next round
            log.warning("could not delete the media of %s; will retry", job_id, exc_info=True)
            continue
        async with db.transaction() as conn:
            if await store.mark_media_purged(conn, job_id, now=now):
                purged.append(job_id)
    if purged:
        log.info("purged the media of %d job(s) past retention", len(purged))
    return purged


async def run_purger(
    db: Database, storage: Storage, stop: asyncio.Event, *, interval_s: float, batch: int
) -> None:
    """Purge a batch every ``interval_s`` (at once again while batches come back full) until ``stop``."""
    while not stop.is_set():
        busy = False
        try:
            busy = len(await purge_once(db, storage, limit=batch)) >= batch
        except Exception:
            log.exception("media retention pass failed; retrying")
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
