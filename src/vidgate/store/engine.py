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
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
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
INLINE_LOCK_WAIT_S = 30.0  # as long as the busy timeout of the threaded SQLite writers
POINT_PING_IDLE_S = 1.0  # a point-read connection idle longer than this is pinged first
_LAST_USED = "vidgate_last_used"


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
        # Point reads: on SQLite on the event loop's thread (see ``inline_sqlite``); on
        # PostgreSQL on autocommit connections without a pre-ping (``_point_engine_pg``).
        self.point_engine: AsyncEngine | None = None
        # Write transactions on an SQLite file run on the event loop's thread too
        # (``_inline_transaction``); ``None`` elsewhere.
        self.inline_writer: AsyncEngine | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            if not null_pool and file_database(url):
                self.point_engine = inline_engine(url, **{**kwargs, "connect_args": {"timeout": 1}})
                _configure_sqlite(self.point_engine, point=True)
                self.inline_writer = inline_engine(
                    url, **{**kwargs, "connect_args": {"timeout": 0}}, pool_size=1, max_overflow=2
                )
                _configure_sqlite(self.inline_writer, busy_wait_ms=0)
        elif not null_pool:
            self.point_engine = _point_engine_pg(url, kwargs)

    @property
    def writing_engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine that writes (for listeners that must see every write)."""
        return (self.engine,) if self.inline_writer is None else (self.engine, self.inline_writer)

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

        On SQLite, writers of this process queue for their turn (``WriterQueue``), and on
        a file the transaction runs on the event loop's thread (``_inline_transaction``):
        through aiosqlite every statement was a thread hop and a wake of the loop, and
        under load those hops, not SQLite, set the pace of the one writer.
        """
        try:
            if self.writers is None:
                async with self.engine.begin() as conn:
                    yield conn
            elif self.inline_writer is not None:
                async with self.writers.turn(), _inline_transaction(self.inline_writer) as conn:
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
        if point and self.point_engine is not None:
            async with self._point_read(self.point_engine) as conn:
                yield conn
            return
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**{_READ_ONLY: True})
                yield conn
                await conn.rollback()
        except (DBAPIError, PoolTimeout, OSError) as exc:
            _raise_if_unavailable(exc)
            raise

    @asynccontextmanager
    async def _point_read(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """One autocommit connection of the point engine: each statement its own snapshot.

        Its pool pings only connections idle for over a second (see ``_point_engine_pg``).
        One the server dropped within that second fails its statement instead: SQLAlchemy
        then discards the whole pool and the read is answered 503, like any read while the
        database is away; the next one connects afresh.
        """
        try:
            async with engine.connect() as conn:
                yield conn
        except (DBAPIError, PoolTimeout, OSError) as exc:
            _raise_if_unavailable(exc)
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        for extra in (self.point_engine, self.inline_writer):
            if extra is not None:
                await extra.dispose()


@asynccontextmanager
async def _inline_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction on the event loop's thread, that never blocks the loop on a lock.

    Its ``BEGIN IMMEDIATE`` does not wait (busy timeout 0): when another process holds
    SQLite's write lock it fails at once, and this waits on the event loop and tries again
    (for ``INLINE_LOCK_WAIT_S`` in all). Once it holds the lock, nothing in WAL mode makes a
    statement or the commit wait, so every statement completes where it is asked for.
    """
    deadline = time.monotonic() + INLINE_LOCK_WAIT_S
    delay = 0.002
    while True:
        conn = await engine.connect()
        try:
            await conn.begin()
            break
        except OperationalError as exc:
            await conn.close()
            if not _sqlite_busy(exc) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        yield conn
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise
    finally:
        await conn.close()


def _sqlite_busy(exc: OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds (SQLITE_BUSY, 5)."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code == 5 if code is not None else "locked" in str(exc.orig)


def _point_engine_pg(url: str, kwargs: dict[str, Any]) -> AsyncEngine:
    """Point reads on PostgreSQL: one round trip each.

    On the main engine a read is a pre-ping, BEGIN, the SELECT and ROLLBACK: four round
    trips through asyncpg for one row. Here connections are in autocommit (a single
    SELECT is its own consistent snapshot), statements stay prepared on the connection,
    and a connection in steady use is not pinged before each read.
    """
    point = {**kwargs, "pool_size": 5, "max_overflow": 10, "pool_pre_ping": False}
    point["isolation_level"] = "AUTOCOMMIT"
    engine = create_async_engine(url, **point)

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # A connection that sat idle may have been dropped (a server restart, an idle
        # timeout): ping it first. One used within the last second is not: in a burst of
        # polls that would double every read. A failed ping makes the pool connect anew.
        used = record.info.get(_LAST_USED)
        if used is not None and time.monotonic() - used > POINT_PING_IDLE_S:
            try:
                dbapi_connection.ping()
            except Exception as exc:
                raise DisconnectionError("stale pooled connection") from exc

    return engine


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


def _configure_sqlite(engine: AsyncEngine, *, point: bool = False, busy_wait_ms: int = 30_000) -> None:
    """Pragmas and transaction starts; ``point``: the inline engine's read-only, autocommit
    connections (each point read is one or two statements; a 1 s busy wait at most).
    ``busy_wait_ms``: how long a statement waits for a lock another connection holds."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={1000 if point else max(busy_wait_ms, 1000)}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if point:
            cursor.execute("PRAGMA query_only=ON")
        elif busy_wait_ms < 1000:  # the set-up above may wait; the connection's work may not
            cursor.execute(f"PRAGMA busy_timeout={busy_wait_ms}")
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
