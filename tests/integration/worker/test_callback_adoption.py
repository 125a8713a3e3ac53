"""fal has no way to look a job up by our reference, so a submit whose answer is lost
used to be sent again (a possible duplicate). Its signed webhook names the upstream
request, and the webhook URL names our job (``?job=``): the job adopts that request.

The real ``FalAdapter`` talks to the fal fake on a loopback port; the fake's webhooks
(its own payload, its own Ed25519 signature) are relayed to the in-process gateway,
whose worker is stepped by hand, so every test sees each step happen in order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, auth
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.domain.job import Job
from vidgate.domain.states import JobStatus
from vidgate.runtime.app import create_app
from vidgate.store import jobs as job_store
from vidgate.store.attempts import Attempt, of_job
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.fal import FalFake
from vidgate.testing.server import serve_in_thread

PUBLIC = "https://gateway.example"
BODY = {"model": "kling-3-pro", "prompt": "a paper boat on a river", "duration": 5}


@dataclass
class Webhooks:
    """The fake's webhooks, captured instead of posted: (url, body, signed headers)."""

    sent: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def capture(
        self,
        url: str,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        sign: Callable[[bytes], dict[str, str]] | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        signed = {"content-type": "application/json", **(headers or {}), **(sign(body) if sign else {})}
        self.sent.append((url, body, signed))

    async def wait_for(self, job_id: str, within_s: float = 15.0) -> tuple[str, bytes, dict[str, str]]:
        deadline = time.monotonic() + within_s
        while True:
            found = [hook for hook in self.sent if f"job={job_id}" in hook[0]]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"the fake never called back for {job_id}"
            await asyncio.sleep(0.02)


@pytest.fixture
def fal() -> Iterator[tuple[FalFake, Webhooks]]:
    fake = FalFake(api_key="fal-key", script=FakeScript(latency_s=0.2, video_seconds=5))
    hooks = Webhooks()
    fake.call_back = hooks.capture  # type: ignore[method-assign]
    with serve_in_thread(fake.app()) as base:
        fake.base_url = base
        yield fake, hooks


@pytest.fixture
async def gateway(settings: Settings, fal: tuple[FalFake, Webhooks]) -> AsyncIterator[Gateway]:
    settings = settings.model_copy(update={"public_url": PUBLIC})
    env = {"VIDGATE_FAL_API_KEY": "fal-key", "VIDGATE_FAL_BASE_URL": fal[0].base_url}
    app = create_app(settings, run_worker=False, env=env)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield Gateway(app.state.services, client, app.state.runtime)


async def job_of(gateway: Gateway, job_id: str) -> Job:
    async with gateway.services.db.read() as conn:
        found = await job_store.get_job(conn, job_id)
    assert found is not None
    return found


async def attempts_of(gateway: Gateway, job_id: str) -> list[Attempt]:
    async with gateway.services.db.read() as conn:
        return await of_job(conn, job_id)


async def step(gateway: Gateway, job_id: str) -> Job:
    """Make the job due now, run one worker step for it, and wait until the step ends."""
    async with gateway.services.db.transaction() as conn:
        await job_store.update_job(conn, job_id, now=utcnow(), run_at=utcnow())
    worker = gateway.runtime.worker
    assert await worker.tick() == 1
    await asyncio.wait(worker._running, timeout=30)
    assert not worker._running
    return await job_of(gateway, job_id)


async def lost_answer(gateway: Gateway, fake: FalFake) -> str:
    """A job whose first submit fal took, but whose answer was unreadable."""
    key, _ = await gateway.account("live-co", credit="5", mode="live")
    created = await gateway.client.post("/v1/videos", headers=auth(key), json=BODY)
    assert created.status_code == 200, created.text
    job_id = str(created.json()["id"])
    fake.script.malformed = True  # the job is made upstream, the answer is garbled
    try:
        submitting = await step(gateway, job_id)
    finally:
        fake.script.malformed = False
    assert submitting.status is JobStatus.SUBMITTING and submitting.upstream_id is None
    assert [a.outcome for a in await attempts_of(gateway, job_id)] == ["unknown"]
    assert len(fake.jobs) == 1
    return job_id


async def relay(gateway: Gateway, hook: tuple[str, bytes, dict[str, str]]) -> int:
    url, body, headers = hook
    assert url.startswith(f"{PUBLIC}/callbacks/fal?")
    answer = await gateway.client.post(url.removeprefix(PUBLIC), content=body, headers=headers)
    return answer.status_code


async def run_to_the_end(gateway: Gateway, job_id: str) -> Job:
    job = await job_of(gateway, job_id)
    for _ in range(10):
        if job.terminal:
            return job
        job = await step(gateway, job_id)
    raise AssertionError(f"{job_id} did not end: {job.status}")


async def test_a_signed_callback_adopts_the_job_whose_submit_answer_was_lost(
    gateway: Gateway, fal: tuple[FalFake, Webhooks]
) -> None:
    fake, hooks = fal
    job_id = await lost_answer(gateway, fake)

    assert await relay(gateway, await hooks.wait_for(job_id)) == 200
    noted = await attempts_of(gateway, job_id)
    upstream_id = next(iter(fake.jobs))
    assert [(a.outcome, a.upstream_id) for a in noted] == [("unknown", upstream_id)]

    running = await step(gateway, job_id)  # reconciles: adopts instead of sending again
    assert running.status is JobStatus.RUNNING and running.upstream_id == upstream_id
    done = await run_to_the_end(gateway, job_id)
    assert done.status is JobStatus.SUCCEEDED, done.error_message
    assert len(fake.submissions()) == 1  # one upstream job, never a second
    attempts = await attempts_of(gateway, job_id)
    assert [(a.outcome, a.upstream_id, a.possible_duplicate) for a in attempts] == [
        ("accepted", upstream_id, False)
    ]
    metrics = gateway.runtime.ops.metrics.render().decode()
    assert "vidgate_upstream_possible_duplicates_total{" not in metrics


async def test_an_unsigned_callback_adopts_nothing(gateway: Gateway, fal: tuple[FalFake, Webhooks]) -> None:
    """Anyone can post to the callback URL: only fal's signature names an upstream job."""
    fake, hooks = fal
    job_id = await lost_answer(gateway, fake)
    url, body, headers = await hooks.wait_for(job_id)
    unsigned = {k: v for k, v in headers.items() if not k.lower().startswith("x-fal-webhook")}
    assert await relay(gateway, (url, body, unsigned)) == 200  # a hint to poll, nothing more
    assert [a.upstream_id for a in await attempts_of(gateway, job_id)] == [None]

    again = await step(gateway, job_id)  # nothing to adopt: sent again, counted as a possible duplicate
    assert again.status is JobStatus.RUNNING
    attempts = await attempts_of(gateway, job_id)
    assert [(a.outcome, a.possible_duplicate) for a in attempts] == [("unknown", False), ("accepted", True)]
    assert len(fake.submissions()) == 2


async def test_a_callback_for_a_job_already_tracked_changes_nothing(
    gateway: Gateway, fal: tuple[FalFake, Webhooks]
) -> None:
    """A signed callback of the lost submit, replayed onto a job that already runs another
    upstream job (or onto any job with no open attempt), adopts nothing."""
    fake, hooks = fal
    job_id = await lost_answer(gateway, fake)
    hook = await hooks.wait_for(job_id)
    resent = await step(gateway, job_id)  # the callback was not relayed: sent again
    assert resent.status is JobStatus.RUNNING and resent.upstream_id != next(iter(fake.jobs))
    assert await relay(gateway, hook) == 200
    attempts = await attempts_of(gateway, job_id)
    assert [(a.outcome, a.upstream_id) for a in attempts] == [
        ("unknown", None),
        ("accepted", resent.upstream_id),
    ]
    assert (await job_of(gateway, job_id)).upstream_id == resent.upstream_id
