"""The store contract: the same tests on SQLite and (with VIDGATE_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, update
from sqlalchemy.exc import IntegrityError

from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus
from vidgate.ids import new_job_id
from vidgate.keyring import Keyring
from vidgate.store import jobs as job_store
from vidgate.store import ledger as ledger_store
from vidgate.store.engine import Database
from vidgate.store.migrate import alembic_config, migrate
from vidgate.store.tables import jobs, metadata


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, keyring=Keyring(b"test-secret"))
    await migrate(database)
    yield database
    await database.dispose()


async def _account(db: Database, credit: int = 10_000_000) -> tuple[str, str]:
    async with db.transaction() as conn:
        account = await ensure_account(conn, "store-test")
        key = await issue_key(conn, account, mode="test")
        await top_up(conn, account, micros=credit, mode="test")
    return account.id, key.id


async def _job(db: Database, account_id: str, key_id: str, *, run_at_offset_s: float = 0) -> str:
    return (await _insert_job(db, account_id, key_id, run_at_offset_s=run_at_offset_s)).id


async def _insert_job(
    db: Database, account_id: str, key_id: str, *, run_at_offset_s: float = 0, **extra: Any
) -> Job:
    now = utcnow()
    async with db.transaction() as conn:
        return await job_store.insert_job(
            conn,
            **{
                "id": new_job_id(),
                "account_id": account_id,
                "key_id": key_id,
                "mode": "test",
                "dialect": "native",
                "model": "m",
                "status": "queued",
                "request": GenerationRequest(model="m", prompt="p").model_dump(mode="json"),
                "metadata": {},
                "estimated_micros": 1,
                "held_micros": 1,
                "created_at": now,
                "updated_at": now,
                "deadline_at": now + timedelta(minutes=10),
                "run_at": now + timedelta(seconds=run_at_offset_s),
                **extra,
            },
        )


async def test_migrations_are_idempotent_and_build_the_declared_schema(db: Database) -> None:
    await migrate(db)
    await migrate(db)

    def schema(connection: Connection) -> tuple[dict[str, set[str]], str | None]:
        found = inspect(connection)
        tables = {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}
        return tables, MigrationContext.configure(connection).get_current_revision()

    async with db.read() as conn:
        tables, revision = await conn.run_sync(schema)
    assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()
    declared = {name: {c.name for c in table.columns} for name, table in metadata.tables.items()}
    assert {t: tables[t] for t in declared if t in tables} == declared
    assert set(declared) <= set(tables)


async def test_an_inserted_job_is_returned_as_it_reads_back(db: Database) -> None:
    """Submit answers with the job ``insert_job`` returns instead of reading it again: it
    must be the row exactly (column defaults, JSON, timestamps to the microsecond)."""
    account_id, key_id = await _account(db)
    request = GenerationRequest(model="m", prompt="p", seconds=5, metadata={"a": "b"})
    inserted = await _insert_job(
        db,
        account_id,
        key_id,
        request=request.model_dump(mode="json"),
        metadata={"a": "b"},
        estimated_micros=1_250_000,
        held_micros=1_250_000,
        idempotency_scope="native",
        idempotency_key="k-1",
        request_hash="h" * 64,
        webhook_url="https://example.com/hook",
    )
    async with db.read(point=True) as conn:
        stored = await job_store.get_job(conn, inserted.id, account_id=account_id)
    assert stored == inserted
    async with db.read() as conn:
        assert await job_store.get_job(conn, inserted.id) == inserted


async def test_database_refuses_unknown_state(db: Database) -> None:
    account_id, key_id = await _account(db)
    job_id = await _job(db, account_id, key_id)
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(status="bogus"))
    with pytest.raises(TypeError):  # and no store function sets a status outside the table
        async with db.transaction() as conn:
            await job_store.update_job(conn, job_id, now=utcnow(), status=JobStatus.SUCCEEDED.value)


async def test_transition_is_guarded_by_the_table(db: Database) -> None:
    account_id, key_id = await _account(db)
    job_id = await _job(db, account_id, key_id)
    async with db.transaction() as conn:
        assert not await job_store.transition(conn, job_id, JobStatus.SUCCEEDED, now=utcnow())
        assert await job_store.transition(conn, job_id, JobStatus.SUBMITTING, now=utcnow())
        assert await job_store.transition(conn, job_id, JobStatus.FAILED, now=utcnow())
        # a second terminal transition (a duplicate settle) changes nothing
        assert not await job_store.transition(conn, job_id, JobStatus.CANCELED, now=utcnow())
        job = await job_store.get_job(conn, job_id)
    assert job is not None and job.status is JobStatus.FAILED and job.completed_at is not None


async def test_lease_is_exclusive_and_expires(db: Database) -> None:
    account_id, key_id = await _account(db)
    ids = {await _job(db, account_id, key_id) for _ in range(5)}
    now = utcnow()

    async def claim(owner: str) -> list[str]:
        async with db.transaction() as conn:
            leased = await job_store.lease_due(
                conn, owner=owner, now=now, until=now + timedelta(seconds=30), limit=5
            )
        return [j.id for j in leased]

    results = await asyncio.gather(*(claim(f"w{i}") for i in range(4)))
    claimed = [job_id for batch in results for job_id in batch]
    assert sorted(claimed) == sorted(ids), "every job leased exactly once"
    # Nothing more is due while the leases hold...
    assert await claim("late") == []
    # ...and a lapsed lease (a dead worker) lets another worker take the job.
    later = now + timedelta(seconds=31)
    async with db.transaction() as conn:
        leased = await job_store.lease_due(
            conn, owner="rescuer", now=later, until=later + timedelta(seconds=30), limit=10
        )
    assert {j.id for j in leased} == ids


async def test_not_due_jobs_are_not_leased(db: Database) -> None:
    account_id, key_id = await _account(db)
    await _job(db, account_id, key_id, run_at_offset_s=60)
    now = utcnow()
    async with db.transaction() as conn:
        assert await job_store.lease_due(conn, owner="w", now=now, until=now, limit=10) == []


async def test_concurrent_holds_never_overdraw(db: Database) -> None:
    account_id, key_id = await _account(db, credit=10_000)

    async def hold(i: int) -> bool:
        async with db.transaction() as conn:
            return await ledger_store.try_hold(
                conn,
                account_id=account_id,
                mode="test",
                amount=1_000,
                job_id=f"job{i}",
                key_id=key_id,
                at=utcnow(),
            )

    results = await asyncio.gather(*(hold(i) for i in range(30)))
    assert sum(results) == 10
    async with db.read() as conn:
        balance = await ledger_store.balance(conn, account_id, "test")
        sums = await ledger_store.entry_sums(conn, account_id, "test")
    assert balance.available_micros == 0 and balance.held_micros == 10_000
    assert sums == balance


async def test_one_hold_per_job(db: Database) -> None:
    account_id, key_id = await _account(db)
    async with db.transaction() as conn:
        assert await ledger_store.try_hold(
            conn,
            account_id=account_id,
            mode="test",
            amount=5,
            job_id="j",
            key_id=key_id,
            at=utcnow(),
        )
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await ledger_store.try_hold(
                conn,
                account_id=account_id,
                mode="test",
                amount=5,
                job_id="j",
                key_id=key_id,
                at=utcnow(),
            )
