"""Write transactions on an SQLite file run on the event loop's thread (issue 15), and
point reads on PostgreSQL take one round trip.

A write transaction (a create's hold, job and event; every worker step) must never
block the event loop on SQLite's write lock: while another connection (another process, in
production: a worker or a CLI command) holds it, the transaction waits on the loop and
other tasks keep running; when the lock does not come free in time it fails and
writes nothing, like the threaded writers after their busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.errors import ServiceUnavailable
from vidgate.store import engine as engine_module
from vidgate.store.engine import Database
from vidgate.store.migrate import migrate
from vidgate.store.tables import kv


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'point.db'}")
    await migrate(database)
    yield database
    await database.dispose()


@pytest.fixture
def other_writer(db: Database) -> Iterator[sqlite3.Connection]:
    """A second connection to the same file, as another process would hold it."""
    path = db.url.split("///", 1)[1]
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    yield conn
    conn.close()


async def _put(conn: AsyncConnection, key: str) -> str:
    await conn.execute(kv.insert().values(key=key, value="v"))
    return key


async def _keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(kv.c.key))).scalars())


async def test_an_inline_transaction_commits_like_any_other(db: Database) -> None:
    assert db.inline_writer is not None
    assert await db.run(lambda conn: _put(conn, "a")) == "a"
    assert "a" in await _keys(db)


async def test_it_waits_for_another_writer_without_blocking_the_loop(
    db: Database, other_writer: sqlite3.Connection
) -> None:
    other_writer.execute("BEGIN IMMEDIATE")
    other_writer.execute("INSERT INTO kv (key, value) VALUES ('theirs', 'v')")
    write = asyncio.create_task(db.run(lambda conn: _put(conn, "mine")))
    ticks = 0
    for _ in range(20):  # the loop turns while the write waits for the lock
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 20
    assert not write.done()
    other_writer.execute("COMMIT")
    assert await asyncio.wait_for(write, timeout=10) == "mine"
    assert {"theirs", "mine"} <= await _keys(db)


async def test_it_gives_up_when_the_lock_never_comes_and_writes_nothing(
    db: Database, other_writer: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "INLINE_LOCK_WAIT_S", 0.2)
    other_writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            await db.run(lambda conn: _put(conn, "never"))
    finally:
        other_writer.execute("ROLLBACK")
    assert "never" not in await _keys(db)


async def test_a_failing_inline_transaction_rolls_back(db: Database) -> None:
    async def fail(conn: AsyncConnection) -> None:
        await _put(conn, "half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.run(fail)
    assert "half" not in await _keys(db)
    assert await db.run(lambda conn: _put(conn, "after")) == "after"


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[Database]:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs VIDGATE_TEST_DATABASE_URL (PostgreSQL)")
    database = Database(database_url)
    yield database
    await database.dispose()


async def _backend_pid(db: Database) -> int:
    async with db.read(point=True) as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _kill(db: Database, pid: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_postgres_point_reads_reuse_one_connection_without_a_transaction(pg: Database) -> None:
    first = await _backend_pid(pg)
    assert await _backend_pid(pg) == first  # pooled, and no pre-ping in between
    # autocommit: each statement is its own transaction (no BEGIN round trip before it),
    # so now() (the transaction's start) moves on between two statements
    assert await _now_moves(pg, point=True) is True
    assert await _now_moves(pg, point=False) is False  # the ordinary read: one transaction


async def _now_moves(db: Database, *, point: bool) -> bool:
    async with db.read(point=point) as conn:
        before = (await conn.execute(text("SELECT now()"))).scalar_one()
        await conn.execute(text("SELECT pg_sleep(0.02)"))
        after = (await conn.execute(text("SELECT now()"))).scalar_one()
    return bool(after > before)


async def test_postgres_point_read_pings_an_idle_connection_the_server_dropped(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "POINT_PING_IDLE_S", 0.0)  # every reuse counts as idle
    dropped = await _backend_pid(pg)
    await _kill(pg, dropped)
    assert await _backend_pid(pg) != dropped  # the ping saw it gone; a fresh connection answered


async def test_postgres_point_read_on_a_just_dropped_connection_is_a_503_then_recovers(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "POINT_PING_IDLE_S", 3600.0)  # never pinged
    dropped = await _backend_pid(pg)
    await _kill(pg, dropped)
    with pytest.raises(ServiceUnavailable):
        await _backend_pid(pg)
    assert await _backend_pid(pg) != dropped
