"""The PostgreSQL side of ``store.changes``: one connection per process that LISTENs.

``JobListener.run`` keeps one dedicated asyncpg connection (outside the pool) with
``LISTEN vidgate_jobs`` and hands every notification to ``JobChanges.received``. When
the connection is lost (the server restarted, the backend was terminated, the network
dropped) it marks the changes as not instant and wakes every waiter, so that they fall
back to re-reading their job every second; it then reconnects by itself with a bounded
backoff, and wakes everyone once more when it listens again (a change committed while
it was away is seen by that re-read). A lost connection is noticed at once from the
socket, and otherwise by a ``SELECT 1`` every ``HEALTH_CHECK_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from vidgate.store.changes import CHANNEL, JobChanges

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 8.0
HEALTH_CHECK_S = 10.0
BACKOFF_MAX_S = 5.0
APPLICATION_NAME = "vidgate-job-listener"  # how it shows in pg_stat_activity


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://...`` as asyncpg's own DSN."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class JobListener:
    def __init__(self, url: str, changes: JobChanges) -> None:
        self._dsn = asyncpg_dsn(url)
        self.changes = changes
        self.connects = 0  # how many times it (re)connected, for tests and logs
        self._listening = asyncio.Event()

    async def wait_listening(self, timeout_s: float) -> bool:
        """Until the listener is connected (tests and start-up), bounded."""
        try:
            await asyncio.wait_for(self._listening.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any driver failure: fall back, reconnect)
                log.warning("job change listener lost (%s); waiters re-read until it is back", exc)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self, stop: asyncio.Event) -> None:
        """One connection: LISTEN until stopped or lost."""
        conn: Any = None
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT_S, server_settings={"application_name": APPLICATION_NAME}
            )
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._on_notification)
            self._up()
            await self._hold(conn, lost, stop)
        finally:
            self._down()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2.0)

    async def _hold(self, conn: Any, lost: asyncio.Event, stop: asyncio.Event) -> None:
        """Until stopped or the connection is gone (checked from the socket and by a ping)."""
        while not stop.is_set() and not lost.is_set() and not conn.is_closed():
            waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())}
            _done, pending = await asyncio.wait(waits, timeout=HEALTH_CHECK_S, return_when="FIRST_COMPLETED")
            for task in pending:
                task.cancel()
            if stop.is_set() or lost.is_set():
                break
            await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_S)
        if lost.is_set() and not stop.is_set():
            raise ConnectionError("the listening connection was closed")

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.changes.received(payload)

    def _up(self) -> None:
        self.connects += 1
        self.changes.listening = True
        self._listening.set()
        self.changes.publish_all()  # anything committed while we were away: re-read
        if self.connects > 1:
            log.info("job change listener is back (LISTEN %s)", CHANNEL)

    def _down(self) -> None:
        if self.changes.listening:
            self.changes.listening = False
            self._listening.clear()
            self.changes.publish_all()  # wake them into the re-reading fallback
