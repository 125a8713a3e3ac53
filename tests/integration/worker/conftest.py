"""A scripted upstream for worker tests: each submit follows the next line of a script.

The worker is driven step by step (``Driver``), never by its background loop, so each
test sees exactly which attempt was made, recorded and reconciled, and nothing is
still writing when a test looks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Gateway, auth
from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.providers.base import (
    Capability,
    Route,
    SubmitAttempt,
    UpstreamError,
    UpstreamOutput,
    UpstreamRef,
    UpstreamStatus,
)
from vidgate.store import jobs as job_store
from vidgate.store.attempts import Attempt, of_job
from vidgate.testing.fake import sample_mp4

MODEL = "kling-3-pro"  # first route: kling (the scripted upstream takes that name)


@dataclass
class UpstreamJob:
    id: str
    attempt: SubmitAttempt
    polls: int = 0
    canceled: bool = False


@dataclass
class Scripted:
    """An upstream whose submits answer from ``script`` (an exception, or "ok"); then "ok"."""

    capabilities: frozenset[Capability] = frozenset({Capability.CANCEL})
    script: list[Any] = field(default_factory=list)
    created: list[UpstreamJob] = field(default_factory=list)
    poll_script: list[Any] = field(default_factory=list)
    name: str = "kling"
    hang_submit: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)  # set when a submit arrives
    hang_poll: asyncio.Event | None = None  # polls wait for it (then answer from poll_script)
    polling: asyncio.Event = field(default_factory=asyncio.Event)  # set when a poll arrives

    async def submit(self, req: Any, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        self.entered.set()
        if self.hang_submit is not None:
            await self.hang_submit.wait()
        action = self.script.pop(0) if self.script else "ok"
        if isinstance(action, UpstreamError):
            if action.outcome_unknown:  # sent and taken, but the answer was lost
                self._create(attempt)
            raise action
        if Capability.IDEMPOTENT_SUBMIT in self.capabilities:
            for job in self.created:
                if job.attempt.idempotency_key == attempt.idempotency_key:
                    return UpstreamRef(job.id)
        return UpstreamRef(self._create(attempt).id)

    def _create(self, attempt: SubmitAttempt) -> UpstreamJob:
        job = UpstreamJob(f"up-{len(self.created) + 1}", attempt)
        self.created.append(job)
        return job

    def of(self, job_id: str) -> list[UpstreamJob]:
        return [j for j in self.created if j.attempt.job_id == job_id]

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        action = self.poll_script.pop(0) if self.poll_script else "ok"
        self.polling.set()
        if self.hang_poll is not None:
            await self.hang_poll.wait()
        if isinstance(action, UpstreamError):
            raise action
        if action == "running":
            return UpstreamStatus("running", progress=50)
        return UpstreamStatus("succeeded", outputs=(UpstreamOutput(url=f"mem://{ref.id}"),))

    async def find(self, attempt: SubmitAttempt, route: Route) -> UpstreamRef | None:
        found = [j for j in self.created if j.attempt.job_id == attempt.job_id and not j.canceled]
        return UpstreamRef(found[-1].id) if found else None

    async def cancel(self, ref: UpstreamRef) -> None:
        for job in self.created:
            if job.id == ref.id:
                job.canceled = True

    def parse_callback(self, call: Any) -> None:
        return None

    def challenge_response(self, call: Any) -> None:
        return None

    async def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        yield sample_mp4(seconds=5)  # the 5 s asked for: charged in full


@dataclass
class Driver:
    gateway: Gateway
    upstream: Scripted
    key: str

    @property
    def worker(self) -> Any:
        return self.gateway.runtime.worker

    async def create(self, **fields: Any) -> str:
        body = {"model": MODEL, "prompt": "a paper boat", "duration": 5, **fields}
        answer = await self.gateway.client.post("/v1/videos", headers=auth(self.key), json=body)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    async def job(self, job_id: str) -> Job:
        async with self.gateway.services.db.read() as conn:
            found = await job_store.get_job(conn, job_id)
        assert found is not None
        return found

    async def attempts(self, job_id: str) -> list[Attempt]:
        async with self.gateway.services.db.read() as conn:
            return await of_job(conn, job_id)

    async def step(self, job_id: str) -> Job:
        """Make the job due now, run exactly one worker step for it, and wait until it ends."""
        async with self.gateway.services.db.transaction() as conn:
            await job_store.update_job(conn, job_id, now=utcnow(), run_at=utcnow())
        assert await self.worker.tick() == 1
        await asyncio.wait(self.worker._running, timeout=30)
        assert not self.worker._running
        return await self.job(job_id)

    async def run_at_in(self, job_id: str) -> float:
        job = await self.job(job_id)
        assert job.run_at is not None
        return (job.run_at - utcnow()).total_seconds()

    async def expire_soon(self, job_id: str, seconds: float) -> None:
        async with self.gateway.services.db.transaction() as conn:
            await job_store.update_job(
                conn, job_id, now=utcnow(), deadline_at=utcnow() + timedelta(seconds=seconds)
            )


@pytest.fixture
def upstream() -> Scripted:
    return Scripted()


@pytest.fixture
async def driver(idle_gateway: Gateway, upstream: Scripted) -> Driver:
    idle_gateway.runtime.services.pool.install("kling", upstream)  # type: ignore[arg-type]
    key, _ = await idle_gateway.account("live-co", credit="50", mode="live")
    return Driver(idle_gateway, upstream, key)
