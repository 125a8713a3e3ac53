"""Job changes: who is waiting on which job, and telling them when it changed.

``JobLifecycle`` writes every visible change of a job (state, progress) and then
calls ``publish(job_id)`` AFTER the transaction committed, never inside one that may
roll back. Waiters (``Prefer: wait``, ``If-None-Match`` long polls, the events stream)
``watch(job_id)``: an ``asyncio.Event`` per waiter in a dict keyed by job id, so a
waiting request costs no CPU and no database connection until its job changes.

Across processes (PostgreSQL) the same write also runs ``announce(conn, job_id)``
inside its transaction: ``pg_notify('vidgate_jobs', '<origin> <job_id>')``, which
PostgreSQL delivers to every listener only when (and if) the transaction commits.
``store.listen.JobListener`` (one connection per process) feeds those to ``publish``
and skips its own process's (``origin``), which were published locally already.

``instant`` says whether a waiter can trust a wake-up to come: True while the
PostgreSQL listener is connected, or, without one (SQLite), when this process is the
only writer of job states (``sole_writer``: the all-in-one ``vidgate serve``). When it
is False waiters re-read their job every ``FALLBACK_RECHECK_S`` instead (spread out
further when there are so many waiters that this would pass ``FALLBACK_READS_PER_S``); the listener
wakes everyone when it drops and again when it is back, so nobody sleeps through the
switch.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "vidgate_jobs"
FALLBACK_RECHECK_S = 1.0  # how often a waiter re-reads when wake-ups may not come ...
FALLBACK_READS_PER_S = 500  # ... unless that would make more re-reads than this per process
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class Watch:
    """One waiter's view of one job: ``changed(timeout)`` returns when woken or timed out.

    A flag and, while waiting, one future and one timer: no task per wait.
    """

    __slots__ = ("_changes", "_pending", "_woken", "job_id")

    def __init__(self, changes: JobChanges, job_id: str) -> None:
        self._changes = changes
        self._woken = False
        self._pending: asyncio.Future[None] | None = None
        self.job_id = job_id

    def wake(self) -> None:
        self._woken = True
        if self._pending is not None and not self._pending.done():
            self._pending.set_result(None)

    async def changed(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` (shortened while wake-ups may not come) for a wake-up.

        Returns whether one came; either way the caller re-reads the job. A wake-up
        that came before this call (between the caller's read and now) is not lost.
        """
        if not self._changes.instant:
            timeout_s = min(timeout_s, self._changes.fallback_interval())
        if timeout_s > 0 and not self._woken:
            loop = asyncio.get_running_loop()
            pending = self._pending = loop.create_future()
            timer = loop.call_later(timeout_s, _expire, pending)
            try:
                await pending
            finally:
                timer.cancel()
                self._pending = None
        woken, self._woken = self._woken, False
        return woken


def _expire(pending: asyncio.Future[None]) -> None:
    if not pending.done():
        pending.set_result(None)


class JobChanges:
    """The per-process registry of waiters, and the ways a change reaches them."""

    def __init__(self, *, sole_writer: bool = True, cross_process: bool = False) -> None:
        self.origin = secrets.token_hex(6)  # tells this process's notifications from others'
        self.sole_writer = sole_writer
        self.cross_process = cross_process  # announce on PostgreSQL; a listener feeds publish
        self.listening = False  # set by the listener while its connection is up
        self.closed = False
        self._watches: dict[str, set[Watch]] = {}
        self._count = 0

    @property
    def instant(self) -> bool:
        """Whether every committed change of a watched job will wake its waiters."""
        if self.closed:
            return False
        return self.listening if self.cross_process else self.sole_writer

    def fallback_interval(self) -> float:
        """How long a waiter sleeps between re-reads while wake-ups may not come: a second,
        or longer when there are so many waiters that their re-reads would exceed
        ``FALLBACK_READS_PER_S`` (jittered, so that they do not all read at once)."""
        spread = max(FALLBACK_RECHECK_S, self.waiting / FALLBACK_READS_PER_S)
        return spread * random.uniform(0.75, 1.25)

    @property
    def waiting(self) -> int:
        """How many waiters are registered (for tests, metrics and the benchmark)."""
        return self._count

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Watch]:
        """Register a waiter on ``job_id`` for the block (register BEFORE reading the job)."""
        found = Watch(self, job_id)
        self._watches.setdefault(job_id, set()).add(found)
        self._count += 1
        try:
            yield found
        finally:
            self._count -= 1
            waiters = self._watches.get(job_id)
            if waiters is not None:
                waiters.discard(found)
                if not waiters:
                    del self._watches[job_id]

    def publish(self, job_id: str) -> None:
        """Wake every waiter of ``job_id`` (call after the change committed)."""
        for found in self._watches.get(job_id, ()):
            found.wake()

    def publish_all(self) -> None:
        """Wake everyone: they re-read (the listener dropped or came back; shutting down)."""
        for waiters in self._watches.values():
            for found in waiters:
                found.wake()

    async def announce(self, conn: AsyncConnection, job_id: str) -> None:
        """Inside the writing transaction: tell other processes, delivered on commit only."""
        if self.cross_process:
            await conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": f"{self.origin} {job_id}"})

    def received(self, payload: str) -> None:
        """A notification from the listener: ``'<origin> <job_id>'``."""
        origin, _, job_id = payload.partition(" ")
        if job_id and origin != self.origin:
            self.publish(job_id)

    def close(self) -> None:
        """Stop promising wake-ups and wake everyone so that they answer now."""
        self.closed = True
        self.publish_all()
