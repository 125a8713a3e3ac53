"""Holds and settlements for one key, from separate processes on PostgreSQL, never deadlock.

Placing a hold used to lock ``api_keys`` then ``balances`` while settling locked them the
other way round; with an API process and a worker working on the same key at once,
PostgreSQL killed one of the two transactions. Here three processes each submit jobs
(hold) and end earlier ones (release) for the same key as fast as they can. Every
operation must succeed and the ledger must add up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.catalog.loader import load_catalog
from vidgate.domain.job import Principal
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus
from vidgate.keyring import Keyring
from vidgate.media.storage import LocalStorage
from vidgate.service.jobs import JobService
from vidgate.service.lifecycle import JobLifecycle
from vidgate.store import ledger as ledger_store
from vidgate.store.engine import Database

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set VIDGATE_TEST_DATABASE_URL")

PROCESSES = 3
KEYRING = Keyring(b"lock-order-secret")  # every process of one deployment shares it
ROUNDS = 25


def _services(url: str, folder: str) -> tuple[Database, JobService, JobLifecycle]:
    db = Database(url, keyring=KEYRING)
    catalog = load_catalog(None)
    lifecycle = JobLifecycle(db, catalog)
    jobs = JobService(
        db,
        catalog,
        LocalStorage(Path(folder)),
        lifecycle,
        job_timeout_s=600,
        availability=lambda spec: None,
    )
    return db, jobs, lifecycle


async def _churn(url: str, folder: str, principal: Principal, worker: int) -> list[str]:
    """Submit a job, then end the one before it: holds and settlements interleave."""
    db, jobs, lifecycle = _services(url, folder)
    errors: list[str] = []
    previous: str | None = None
    try:
        for n in range(ROUNDS):
            try:
                req = GenerationRequest(model="sora-2", prompt=f"p{worker}-{n}", duration_s=4)
                job = (await jobs.submit(principal, req, dialect="native")).job
                if previous is not None:
                    assert await lifecycle.finish(
                        previous, JobStatus.FAILED, error_code="x", error_message="x"
                    )
                previous = job.id
            except Exception as exc:  # every kind of failure is what this test counts
                errors.append(f"{type(exc).__name__}: {exc}")
        if previous is not None:
            await lifecycle.finish(previous, JobStatus.CANCELED, error_code="x", error_message="x")
    finally:
        await db.dispose()
    return errors


def _run_churn(url: str, folder: str, principal: Principal, worker: int) -> list[str]:
    return asyncio.run(_churn(url, folder, principal, worker))


async def test_holds_and_settlements_from_separate_processes_never_deadlock(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url, keyring=KEYRING)
    from vidgate.store.migrate import migrate

    await migrate(db)
    async with db.transaction() as conn:
        account = await ensure_account(conn, "churn")
        key = await issue_key(conn, account, mode="test")
        await top_up(conn, account, micros=1_000_000_000, mode="test")
    principal = Principal(account.id, account.name, key.id, "test")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        futures = [
            pool.submit(_run_churn, database_url, str(tmp_path), principal, w) for w in range(PROCESSES)
        ]
        loop = asyncio.get_running_loop()
        results = [await loop.run_in_executor(None, f.result, 300) for f in futures]
    assert [e for errors in results for e in errors] == []
    async with db.read() as conn:
        balance = await ledger_store.balance(conn, account.id, "test")
        sums = await ledger_store.entry_sums(conn, account.id, "test")
    await db.dispose()
    assert balance.held_micros == 0 and balance == sums
    assert balance.available_micros == 1_000_000_000
