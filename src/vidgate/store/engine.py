"""Connecting to the database: one ``Database`` per process, SQLite or PostgreSQL.

SQLite runs in WAL mode, and every write transaction starts with ``BEGIN
IMMEDIATE``, so that two writers queue on the lock (with a busy timeout) instead of
failing when one upgrades a read lock. PostgreSQL runs at READ COMMITTED and relies
on conditional UPDATEs and ``FOR UPDATE SKIP LOCKED``.

Three ways in:

- ``run(fn)``: a write transaction that is retried AS A WHOLE (bounded, with jittered
  backoff) when PostgreSQL aborts it for a deadlock or a serialization failure. Every
  transaction that moves money goes through it: a retried transaction re-reads
  everything it decides on, so a retry can never apply a change twice.
- ``transaction()``: a plain write transaction (for writes that cannot conflict).
- ``read()``: a read-only snapshot (never takes SQLite's write lock).

When the database cannot be reached (refused, reset, shutting down, pool exhausted),
each of them raises ``ServiceUnavailable`` (answered as 503 with ``Retry-After``)
instead of a driver error, and no call waits on a dead server past a few seconds.
A SQLite database file is created readable by its owner only (0600); SQLite gives
its ``-wal`` and ``-shm`` files the mode of the database file. A ``Database`` opened
with a ``Keyring`` hands it to the store functions that seal or hash secrets
(``keyring_of(conn)``): no caller can write a secret column in the clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from vidgate.config import Settings
from vidgate.errors import ServiceUnavailable
from vidgate.keyring import Keyring
from vidgate.store.inline_sqlite import file_database, inline_engine
from vidgate.store.writers import WriterQueue

log = logging.getLogger(__name__)

T = TypeVar("T")

_READ_ONLY = "vidgate_read_only"
_KEYRING = "vidgate_keyring"
OWNER_ONLY_FILE = 0o600
# PostgreSQL aborts one of two transactions that wait on each other: retry it whole.
_RETRYABLE_STATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
# Connection exceptions (class 08) and the server shutting down or starting up.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03"})
CONNECT_TIMEOUT_S = 8.0  # a server that does not answer a connect in this long is down
POOL_WAIT_S = 30.0  # waiting for a free pooled connection is queueing under load, not an outage
RETRY_ATTEMPTS = 6


class Database:
    """The engine plus the ways in: ``run`` / ``transaction()`` to write, ``read()`` to look."""

    def __init__(
        self, url: str, *, echo: bool = False, null_pool: bool = False, keyring: Keyring | None = None
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.writers = WriterQueue() if self.is_sqlite else None
        self.keyring = keyring
        kwargs: dict[str, Any] = {"echo": echo}
        if keyring is not None:
            kwargs["execution_options"] = {_KEYRING: keyring}
        if null_pool:
            kwargs["poolclass"] = NullPool
        elif not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=POOL_WAIT_S)
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            _private_sqlite_files(url)
        else:
            kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_S, "command_timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        # point reads on SQLite run on the event loop's thread (see ``inline_sqlite``)
        self.point_engine: AsyncEngine | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            if not null_pool and file_database(url):
                self.point_engine = inline_engine(url, **{**kwargs, "connect_args": {"timeout": 1}})
                _configure_sqlite(self.point_engine, point=True)

    async def run(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = RETRY_ATTEMPTS
    ) -> T:
        """Run ``fn`` in a write transaction, retried whole on deadlock or serialization failure."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as conn:
                    return await fn(conn)
            except DBAPIError as exc:
                if attempt == attempts or _sqlstate(exc) not in _RETRYABLE_STATES:
                    raise
                log.info("transaction aborted (%s); retrying it (%d/%d)", _sqlstate(exc), attempt, attempts)
            await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error.

        On SQLite, writers of this process queue for their turn (``WriterQueue``).
        """
        try:
            if self.writers is None:
                async with self.engine.begin() as conn:
                    yield conn
            else:
                async with self.writers.turn(), self.engine.begin() as conn:
                    yield conn
        except (DBAPIError, PoolTimeout, OSError) as exc:
            _raise_if_unavailable(exc)
            raise

    @asynccontextmanager
    async def read(self, *, point: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (never takes SQLite's write lock).

        ``point``: a read of a few rows by key, on a hot path. On an SQLite file it runs on
        the event loop's thread, without aiosqlite's thread hops (``inline_sqlite``).
        """
        inline = point and self.point_engine is not None
        engine = self.point_engine if inline and self.point_engine is not None else self.engine
        try:
            async with engine.connect() as conn:
                if not inline:  # the inline engine's connections are read-only already
                    conn = await conn.execution_options(**{_READ_ONLY: True})
                yield conn
                await conn.rollback()
        except (DBAPIError, PoolTimeout, OSError) as exc:
            _raise_if_unavailable(exc)
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.point_engine is not None:
            await self.point_engine.dispose()


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, wherever the driver put it."""
    for candidate in (getattr(exc, "orig", None), exc.__cause__, exc):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (as opposed to a bad statement)."""
    if isinstance(exc, PoolTimeout | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError):
        return True  # refused, unreachable, reset while connecting
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        if state is not None:
            return state.startswith("08") or state in _UNAVAILABLE_STATES
        cause = getattr(exc, "orig", None)
        cause = getattr(cause, "__cause__", None) or cause
        name = type(cause).__name__
        return isinstance(cause, OSError | TimeoutError) or name in {
            "ConnectionDoesNotExistError",
            "InterfaceError",
            "ConnectionFailureError",
        }
    return False


def _raise_if_unavailable(exc: BaseException) -> None:
    if is_unavailable(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(
            "the database is unavailable right now; the request changed nothing, retry shortly",
            retry_after_s=2,
        ) from exc


def _configure_sqlite(engine: AsyncEngine, *, point: bool = False) -> None:
    """Pragmas and transaction starts; ``point``: the inline engine's read-only, autocommit
    connections (each point read is one or two statements; a 1 s busy wait at most)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={1000 if point else 30000}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if point:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    if point:
        return

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def open_database(settings: Settings, *, null_pool: bool = False) -> Database:
    """The configured database, with the keyring derived from the server secret."""
    settings.ensure_data_dir()
    return Database(
        settings.resolved_database_url, null_pool=null_pool, keyring=Keyring.from_settings(settings)
    )


def keyring_of(conn: AsyncConnection | Connection) -> Keyring:
    """The keyring of the ``Database`` this connection came from."""
    found = maybe_keyring(conn)
    if found is None:
        raise RuntimeError("this Database was opened without a keyring (use open_database)")
    return found


def maybe_keyring(conn: AsyncConnection | Connection) -> Keyring | None:
    sync = conn.sync_connection if isinstance(conn, AsyncConnection) else conn
    found = sync.get_execution_options().get(_KEYRING) if sync is not None else None
    return found if isinstance(found, Keyring) else None


def _private_sqlite_files(url: str) -> None:
    """Create the database file 0600 before SQLite does (0644), and tighten existing ones."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE))
    for sidecar in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if sidecar.stat().st_mode & 0o077:
                sidecar.chmod(OWNER_ONLY_FILE)


def _wal(cursor: Any) -> None:
    """Switch a connection's database to WAL. The first switch of a new file needs the file
    to itself and does not wait on the busy handler, so several processes opening one new
    database at once (replicas starting together) retry it briefly instead of failing."""
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, whichever adapter; re-raised
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.02)
