"""One provider contract, run against every fake in process (ASGI transport).

Each adapter must: deliver a playable MP4; end a failed job with the upstream's
reason; refuse bad keys and content as permanent errors; answer 429 and 5xx as
retryable; call an unknown status word "running"; and set ``outcome_unknown``
exactly when a submission may have been accepted although we could not read the
acceptance (a read timeout after sending, an unreadable or wrongly shaped 2xx), never
when it provably was not (a connect error, 4xx, 429, 5xx).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.providers.conftest import assert_mp4, collect
from tests.integration.providers.contract import CASES, Case, FaultTransport, on_first_post
from vidgate.providers.base import (
    MinimalAdapter,
    ProviderAdapter,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamContentPolicy,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vidgate.testing.fake import FakeUpstream

BASE = "http://fake.test"
ATTEMPT = SubmitAttempt.first("job-contract")


class Rig:
    """A fake, its transport, and an adapter pointed at it."""

    def __init__(self, case: Case, fake: FakeUpstream, transport: FaultTransport, http: httpx.AsyncClient):
        self.case, self.fake, self.transport, self.http = case, fake, transport, http

    def adapter(self, api_key: str | None = None) -> ProviderAdapter:
        adapter = self.case.adapter(self.http, BASE, api_key)
        assert isinstance(adapter, ProviderAdapter)
        return adapter

    async def submit(self, adapter: MinimalAdapter | None = None) -> UpstreamRef:
        return await (adapter or self.adapter()).submit(self.case.req, self.case.route, ATTEMPT)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    case: Case = request.param
    fake = case.fake()
    fake.base_url = BASE
    transport = FaultTransport(fake.app())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield Rig(case, fake, transport, http)
    for task in list(fake._background):  # the fake's timers (callbacks are off)
        task.cancel()


async def to_the_end(adapter: MinimalAdapter, ref: UpstreamRef, within_s: float = 10.0) -> UpstreamStatus:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not (status := await adapter.poll(ref)).terminal:
        assert loop.time() < deadline, f"not terminal in time: {status}"
        await asyncio.sleep(0.03)
    return status


async def test_success_delivers_a_playable_mp4(rig: Rig) -> None:
    adapter = rig.adapter()
    ref = await rig.submit(adapter)
    final = await to_the_end(adapter, ref)
    assert final.state == "succeeded", final
    assert_mp4(await collect(adapter.stream_output(final.outputs[0])))
    (submission,) = rig.fake.submissions()
    assert submission["upstream_id"] == ref.id or ref.id.endswith(submission["upstream_id"])


async def test_failure_carries_the_upstream_reason(rig: Rig) -> None:
    rig.fake.script.fail_reason = "the GPU caught fire"
    adapter = rig.adapter()
    final = await to_the_end(adapter, await rig.submit(adapter))
    assert final.state == "failed"
    assert isinstance(final.error, UpstreamError)
    assert "GPU caught fire" in final.error.message


async def test_429_then_success(rig: Rig) -> None:
    rig.fake.script.submit_statuses = [429]
    adapter = rig.adapter()
    with pytest.raises(UpstreamRateLimited) as caught:
        await rig.submit(adapter)
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert not rig.fake.jobs  # nothing was created
    final = await to_the_end(adapter, await rig.submit(adapter))
    assert final.state == "succeeded"


async def test_5xx_is_retryable_and_provably_not_accepted(rig: Rig) -> None:
    rig.fake.script.submit_statuses = [503]
    with pytest.raises(UpstreamUnavailable) as caught:
        await rig.submit()
    assert caught.value.retryable and not caught.value.outcome_unknown


async def test_connect_error_is_provably_not_accepted(rig: Rig) -> None:
    rig.transport.fault = on_first_post(httpx.ConnectError("refused"), sent=False)
    with pytest.raises(UpstreamUnavailable) as caught:
        await rig.submit()
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert not rig.fake.jobs


async def test_read_timeout_after_sending_is_an_unknown_outcome(rig: Rig) -> None:
    rig.transport.fault = on_first_post(httpx.ReadTimeout("no answer"), sent=True)
    with pytest.raises(UpstreamTimeout) as caught:
        await rig.submit()
    assert caught.value.outcome_unknown
    assert len(rig.fake.jobs) == 1  # the upstream did create it: that is why it is unknown


async def test_reset_after_sending_is_an_unknown_outcome(rig: Rig) -> None:
    rig.transport.fault = on_first_post(httpx.RemoteProtocolError("reset"), sent=True)
    with pytest.raises(UpstreamUnavailable) as caught:
        await rig.submit()
    assert caught.value.outcome_unknown


async def test_malformed_acceptance_is_an_unknown_outcome(rig: Rig) -> None:
    rig.fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError) as caught:
        await rig.submit()
    assert caught.value.outcome_unknown


async def test_wrongly_shaped_acceptance_is_an_unknown_outcome(rig: Rig) -> None:
    rig.fake.script.unknown_shape = True
    with pytest.raises(UpstreamProtocolError) as caught:
        await rig.submit()
    assert caught.value.outcome_unknown


async def test_malformed_poll_is_a_protocol_error(rig: Rig) -> None:
    adapter = rig.adapter()
    ref = await rig.submit(adapter)
    rig.fake.script.malformed = True
    with pytest.raises(UpstreamProtocolError) as caught:
        await adapter.poll(ref)
    assert not caught.value.outcome_unknown  # only a submission can have an unknown outcome


async def test_bad_key_is_an_auth_error(rig: Rig) -> None:
    if not rig.case.has_auth:
        pytest.skip("this upstream has no auth of its own")
    with pytest.raises(UpstreamAuthError) as caught:
        await rig.submit(rig.adapter(api_key="wrong-key"))
    assert not caught.value.retryable and not caught.value.outcome_unknown


async def test_content_policy_is_a_permanent_refusal(rig: Rig) -> None:
    rig.fake.script.content_policy = True
    adapter = rig.adapter()
    try:
        ref = await rig.submit(adapter)
    except UpstreamRejected as refused:
        error: UpstreamError | None = refused
    else:
        final = await to_the_end(adapter, ref)
        assert final.state == "failed"
        error = final.error
    assert isinstance(error, UpstreamRejected) and not error.retryable
    if rig.case.name != "comfyui":  # a workflow's safety node failing is only a failure
        assert isinstance(error, UpstreamContentPolicy), error


async def test_unknown_status_word_means_running(rig: Rig) -> None:
    if rig.case.status_path is None:
        pytest.skip("this upstream has no status word (done flag or history only)")
    adapter = rig.adapter()
    ref = await rig.submit(adapter)
    rig.transport.status_word = (rig.case.status_path, "MYSTERY_STATE")
    status = await adapter.poll(ref)
    assert (status.state, status.raw_status) == ("running", "MYSTERY_STATE")
