"""SQLite reads on the event loop's own thread, for short point reads on hot paths.

aiosqlite runs every call (BEGIN, execute, fetch, close, ROLLBACK) on its worker
thread and wakes the event loop for each answer: on a poll that thread hop costed
more CPU than the query itself (about 2.4 ms against 0.9 ms per read on the 2-core
benchmark machine, measured with ``time.process_time``). In WAL mode a reader never
waits for the writer, so a point read by primary key or unique index (tens of
microseconds in SQLite) can run where it is asked for, with no thread at all.

``inline_engine`` makes an ``AsyncEngine`` over the standard ``sqlite3`` module whose
cursor completes each execute at once (one no-op await satisfies SQLAlchemy's
asyncio layer, which insists that a driver awaits something). Only
``Database.read(point=True)`` uses it; scans, listings and every write stay on
aiosqlite, so a long query never holds up the event loop. An in-memory database
has no second connection to share it, so it gets no inline engine.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_

DRIVER = "vidgate_inline"


async def _done() -> None:
    return None


class InlineCursor(sqlite3.Cursor):
    """A ``sqlite3`` cursor that tells SQLAlchemy's asyncio layer it has awaited."""

    def execute(self, sql: str, parameters: Any = (), /) -> InlineCursor:
        super().execute(sql, parameters)
        await_(_done())  # completes at once: no event loop turn, no thread
        return self

    def executemany(self, sql: str, parameters: Any, /) -> InlineCursor:
        super().executemany(sql, parameters)
        await_(_done())
        return self

    async def _async_soft_close(self) -> None:
        """Nothing to do: a ``sqlite3`` cursor keeps its rows until fetched."""


class InlineConnection(sqlite3.Connection):
    def cursor(self, factory: Any = InlineCursor) -> Any:
        return super().cursor(factory)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, declared async: its calls finish inside SQLAlchemy's greenlet."""

    is_async = True
    supports_statement_cache = True


registry.register(f"sqlite.{DRIVER}", __name__, "InlineSQLiteDialect")


def file_database(url: str) -> bool:
    """Whether ``url`` names an SQLite file (a second connection sees the same data)."""
    database = make_url(url).database
    return bool(database) and database != ":memory:" and not str(database).startswith("file:")


def inline_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine on the same SQLite file, running on the caller's thread."""
    inline = make_url(url).set(drivername=f"sqlite+{DRIVER}")
    connect_args = {**kwargs.pop("connect_args", {}), "factory": InlineConnection}
    kwargs.pop("poolclass", None)
    return create_async_engine(inline, poolclass=AsyncAdaptedQueuePool, connect_args=connect_args, **kwargs)
