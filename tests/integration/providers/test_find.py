"""``find``: adopting the upstream job an earlier attempt created but never confirmed.

For every adapter that declares ``Capability.FIND``: a submission whose acceptance was
lost (chaos answers it with a malformed 2xx, so ``outcome_unknown``) is found again by
the next attempt of the same gateway job, and polling it reaches the end; another
job's attempt finds nothing. Adapters without the capability find nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.providers.contract import CASES, Case
from vidgate.providers.base import Capability, ProviderAdapter, SubmitAttempt, UpstreamProtocolError
from vidgate.testing.chaos import Chaos

BASE = "http://fake.test"
FINDERS = [c for c in CASES if c.name in ("kling", "luma", "comfyui")]
OTHERS = [c for c in CASES if c not in FINDERS]


def adapter_for(case: Case, http: httpx.AsyncClient, callback_url: str | None = None) -> ProviderAdapter:
    adapter = case.adapter(http, BASE, callback_url=callback_url)
    assert isinstance(adapter, ProviderAdapter)
    return adapter


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.mark.parametrize("case", FINDERS, ids=[c.name for c in FINDERS])
async def test_a_lost_acceptance_is_found_by_the_next_attempt(case: Case) -> None:
    fake = case.fake()
    fake.base_url = BASE
    fake.script.send_callbacks = False
    fake.chaos.chaos = Chaos(p_malformed=1.0)
    transport = httpx.ASGITransport(app=fake.app())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        # Luma's only reference is the ?job= on the callback URL (no callback is sent here).
        adapter = adapter_for(case, http, "https://gw.example/callbacks/x" if case.name == "luma" else None)
        assert Capability.FIND in adapter.capabilities
        first = SubmitAttempt("job-lost", 1, "vg_job-lost")
        with pytest.raises(UpstreamProtocolError) as caught:
            await adapter.submit(case.req, case.route, first)
        assert caught.value.outcome_unknown
        (created,) = fake.submissions()

        fake.chaos.chaos = None
        second = SubmitAttempt("job-lost", 2, "vg_job-lost")
        found = await adapter.find(second, case.route)
        assert found is not None and found.id == created["upstream_id"]
        assert await adapter.find(SubmitAttempt.first("someone-else"), case.route) is None
        for _ in range(300):
            if (status := await adapter.poll(found)).terminal:
                break
            await asyncio.sleep(0.02)
        assert status.state == "succeeded"
        assert len(fake.submissions()) == 1  # adopted, not submitted again
    for task in list(fake._background):
        task.cancel()


async def test_luma_cannot_find_without_a_callback_url(http: httpx.AsyncClient) -> None:
    (luma,) = [c for c in FINDERS if c.name == "luma"]
    adapter = luma.adapter(http, "http://unused.test")
    assert await adapter.find(SubmitAttempt.first("job"), luma.route) is None  # no call made


@pytest.mark.parametrize("case", OTHERS, ids=[c.name for c in OTHERS])
async def test_without_the_capability_find_is_none(case: Case, http: httpx.AsyncClient) -> None:
    adapter = adapter_for(case, http)
    assert Capability.FIND not in adapter.capabilities
    assert await adapter.find(SubmitAttempt.first("job"), case.route) is None


async def test_no_adapter_claims_idempotent_submits(http: httpx.AsyncClient) -> None:
    """None of today's upstreams documents an idempotency key (docs/upstreams.md); the
    capability exists for one that does, and must not be claimed without it."""
    for case in CASES:
        adapter = case.adapter(http, BASE)
        assert Capability.IDEMPOTENT_SUBMIT not in adapter.capabilities, case.name
