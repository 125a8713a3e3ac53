"""Connecting to the database: one ``Database`` per process, SQLite or PostgreSQL.

SQLite runs in WAL mode, and every write transaction starts with ``BEGIN
IMMEDIATE``, so that two writers queue on the lock (with a busy timeout) instead of
failing when one upgrades a read lock. PostgreSQL runs at READ COMMITTED and relies
on conditional UPDATEs and ``FOR UPDATE SKIP LOCKED``.

A SQLite database file is created readable by its owner only (0600); SQLite gives
its ``-wal`` and ``-shm`` files the mode of the database file. A ``Database`` opened
with a ``Keyring`` hands it to the store functions that seal or hash secrets
(``keyring_of(conn)``): no caller can write a secret column in the clear.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from vidgate.config import Settings
from vidgate.keyring import Keyring

_READ_ONLY = "vidgate_read_only"
_KEYRING = "vidgate_keyring"
OWNER_ONLY_FILE = 0o600


class Database:
    """The engine plus the two ways in: ``transaction()`` to write, ``read()`` to look."""

    def __init__(
        self, url: str, *, echo: bool = False, null_pool: bool = False, keyring: Keyring | None = None
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.keyring = keyring
        kwargs: dict[str, Any] = {"echo": echo}
        if keyring is not None:
            kwargs["execution_options"] = {_KEYRING: keyring}
        if null_pool:
            kwargs["poolclass"] = NullPool
        elif not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
            _private_sqlite_files(url)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (never takes SQLite's write lock)."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{_READ_ONLY: True})
            yield conn
            await conn.rollback()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

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
