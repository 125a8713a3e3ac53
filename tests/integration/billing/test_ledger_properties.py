"""Property test: random sequences of submit, success, failure, expiry, cancel and top-up.

After every step: the running balance equals the sum of the ledger entries; the
held amount equals the holds of the jobs still active; no terminal job keeps a
hold; nothing is captured or released twice; nothing is captured beyond its hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.domain.job import MediaInfo, Principal
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import ACTIVE, JobStatus
from vidgate.errors import Conflict, InsufficientFunds
from vidgate.runtime.services import build_runtime
from vidgate.store import jobs as job_store
from vidgate.store import ledger as ledger_store

DURATIONS = st.integers(min_value=1, max_value=10)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        config = Settings(data_dir=Path(self.folder.name), secret_key="x", rate_limit_per_minute=0)
        self.runtime = self.run(build_runtime(config, env={}))
        self.svc = self.runtime.services
        self.principal = self.run(self._principal())
        self.jobs: list[str] = []

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    async def _principal(self) -> Principal:
        async with self.svc.db.transaction() as conn:
            account = await ensure_account(conn, "prop")
            key = await issue_key(conn, account, mode="test")
            await top_up(conn, account, micros=2_000_000, mode="test")
        return Principal(account.id, account.name, key.id, "test")

    def teardown(self) -> None:
        self.run(self.runtime.close())
        self.loop.close()
        self.folder.cleanup()

    # ----------------------------------------------------------- steps

    @rule(seconds=DURATIONS)
    def submit(self, seconds: int) -> None:
        req = GenerationRequest(model="kling-3-pro", prompt="p", duration_s=seconds)
        try:
            job = self.run(self.svc.jobs.submit(self.principal, req, dialect="native")).job
        except InsufficientFunds:
            return
        self.jobs.append(job.id)

    @rule(micros=st.integers(min_value=1, max_value=3_000_000))
    def topup(self, micros: int) -> None:
        async def go() -> None:
            async with self.svc.db.transaction() as conn:
                account = await ensure_account(conn, "prop")
                await top_up(conn, account, micros=micros, mode="test")

        self.run(go())

    def _active(self) -> list[str]:
        async def go() -> list[str]:
            async with self.svc.db.read() as conn:
                found = [await job_store.get_job(conn, j) for j in self.jobs]
            return [j.id for j in found if j is not None and j.status in ACTIVE]

        return self.run(go())

    @precondition(lambda self: bool(self.jobs))
    @rule(
        index=st.integers(min_value=0),
        end=st.sampled_from([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELED]),
        delivered=st.one_of(st.none(), st.floats(min_value=0.5, max_value=12)),
    )
    def finish(self, index: int, end: JobStatus, delivered: float | None) -> None:
        """End any job (active or already ended: a duplicate must change nothing)."""
        job_id = self.jobs[index % len(self.jobs)]

        async def go() -> None:
            async with self.svc.db.transaction() as conn:
                job = await job_store.get_job(conn, job_id)
                assert job is not None
                if end is JobStatus.SUCCEEDED and job.status in ACTIVE:
                    for step in (JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.FETCHING):
                        await job_store.transition(conn, job_id, step, now=utcnow())
                    job = await job_store.get_job(conn, job_id)
                    assert job is not None
                media = MediaInfo("k", None, delivered or float(job.request.duration_s or 5), 1, 1, "h264", 1)
                await self.svc.lifecycle.finish_in(conn, job, end, now=utcnow(), media=media)

        self.run(go())

    @precondition(lambda self: bool(self.jobs))
    @rule(index=st.integers(min_value=0))
    def cancel(self, index: int) -> None:
        job_id = self.jobs[index % len(self.jobs)]
        with contextlib.suppress(Conflict):  # already ended: refused, and nothing changes
            self.run(self.svc.jobs.cancel(self.principal, job_id))

    # ------------------------------------------------------- invariants

    @invariant()
    def money_adds_up(self) -> None:
        async def go() -> None:
            async with self.svc.db.read() as conn:
                balance = await ledger_store.balance(conn, self.principal.account_id, "test")
                sums = await ledger_store.entry_sums(conn, self.principal.account_id, "test")
                jobs = [await job_store.get_job(conn, j) for j in self.jobs]
                entries = [e for j in self.jobs for e in await ledger_store.job_entries(conn, j)]
            assert balance == sums
            assert balance.available_micros >= 0
            active_held = sum(j.held_micros for j in jobs if j is not None and j.status in ACTIVE)
            assert balance.held_micros == active_held, "no hold outlives its job"
            per_job = Counter((e.job_id, e.kind) for e in entries)
            assert all(count == 1 for count in per_job.values()), "nothing settles twice"
            for job in jobs:
                assert job is not None
                if job.terminal:
                    settled = sum(
                        -e.held_delta_micros for e in entries if e.job_id == job.id and e.kind != "hold"
                    )
                    assert settled == job.held_micros
                    assert (job.charged_micros or 0) <= job.held_micros
                    if job.status is not JobStatus.SUCCEEDED:
                        assert not job.charged_micros

        self.run(go())


LedgerMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerProperties = LedgerMachine.TestCase
