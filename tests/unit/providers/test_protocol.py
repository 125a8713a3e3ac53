"""The provider protocol: a minimal adapter gets the shared defaults; status words; attempts."""

from __future__ import annotations

import logging

import httpx
import pytest

from vidgate.domain.request import GenerationRequest
from vidgate.providers.adapter import complete
from vidgate.providers.base import (
    Capability,
    MinimalAdapter,
    ProviderAdapter,
    ProviderContext,
    Route,
    State,
    SubmitAttempt,
    UpstreamOutput,
    UpstreamRef,
    UpstreamRejected,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
    state_for,
)
from vidgate.providers.http import callback_url_for, transport_error
from vidgate.providers.registry import PROVIDERS, adapter_factory


class Minimal:
    """Only what a provider module must write."""

    name = "minimal"
    capabilities = frozenset({Capability.IMAGE_INPUT})

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        return UpstreamRef(id=attempt.job_id)

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        return UpstreamStatus(state="running")


def ctx(http: httpx.AsyncClient, callback_url: str | None = None) -> ProviderContext:
    return ProviderContext(http=http, api_key=None, base_url="http://x", callback_url=callback_url)


async def test_a_minimal_adapter_gets_every_default() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"0123456789")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        minimal = Minimal()
        assert isinstance(minimal, MinimalAdapter) and not isinstance(minimal, ProviderAdapter)
        adapter = complete(minimal, ctx(http))
        assert isinstance(adapter, ProviderAdapter)
        assert (adapter.name, adapter.capabilities) == ("minimal", minimal.capabilities)
        attempt = SubmitAttempt.first("job-1")
        route = Route("minimal", "m")
        ref = await adapter.submit(GenerationRequest(model="m", prompt="p"), route, attempt)
        assert ref.id == "job-1" and (await adapter.poll(ref)).state == "running"
        assert await adapter.find(attempt, route) is None
        assert adapter.parse_callback(_call()) is None
        assert adapter.challenge_response(_call()) is None
        with pytest.raises(UpstreamRejected, match="cannot cancel"):
            await adapter.cancel(ref)
        chunks = [c async for c in adapter.stream_output(UpstreamOutput(url="http://x/v.mp4"))]
        assert b"".join(chunks) == b"0123456789"  # through the injected client


def _call() -> object:
    from vidgate.providers.base import CallbackRequest

    return CallbackRequest(headers={}, body=b"{}")


async def test_every_registered_adapter_is_complete() -> None:
    async with httpx.AsyncClient() as http:
        for name in PROVIDERS:
            context = ProviderContext(
                http=http, api_key="k", base_url="http://x", options={"secret_key": "s" * 32}
            )
            assert isinstance(adapter_factory(name)(context), ProviderAdapter), name


def test_unknown_status_words_mean_running_and_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    table: dict[str, State] = {"done": "succeeded", "wait": "queued"}
    assert state_for("p", table, "done") == "succeeded"
    with caplog.at_level(logging.WARNING):
        assert state_for("p", table, "glorping", "u-1") == "running"
    assert "glorping" in caplog.text and "u-1" in caplog.text


def test_attempts_share_one_idempotency_key() -> None:
    first = SubmitAttempt.first("j1")
    assert (first.number, first.idempotency_key) == (1, "vg_j1")
    assert SubmitAttempt("j1", 2, first.idempotency_key).idempotency_key == first.idempotency_key


async def test_callback_urls_name_the_job() -> None:
    async with httpx.AsyncClient() as http:
        attempt = SubmitAttempt.first("job 1")
        assert callback_url_for(ctx(http), attempt) is None
        assert callback_url_for(ctx(http, "https://gw/cb/x"), attempt) == "https://gw/cb/x?job=job+1"
        assert callback_url_for(ctx(http, "https://gw/cb/x?t=1"), attempt) == "https://gw/cb/x?t=1&job=job+1"


@pytest.mark.parametrize(
    ("exc", "kind", "unknown"),
    [
        (httpx.ConnectError("x"), UpstreamUnavailable, False),
        (httpx.ConnectTimeout("x"), UpstreamTimeout, False),
        (httpx.PoolTimeout("x"), UpstreamTimeout, False),
        (httpx.ReadTimeout("x"), UpstreamTimeout, True),
        (httpx.WriteTimeout("x"), UpstreamTimeout, True),
        (httpx.ReadError("x"), UpstreamUnavailable, True),
        (httpx.RemoteProtocolError("x"), UpstreamUnavailable, True),
    ],
)
def test_transport_errors_on_a_submit(exc: httpx.TransportError, kind: type, unknown: bool) -> None:
    error = transport_error(exc, "POST", 5.0, submit=True)
    assert isinstance(error, kind) and error.retryable
    assert error.outcome_unknown is unknown
    assert transport_error(exc, "GET", 5.0, submit=False).outcome_unknown is False


async def test_a_partial_adapter_keeps_its_own_optional_methods() -> None:
    class WithCancel(Minimal):
        canceled: list[str]

        def __init__(self) -> None:
            self.canceled = []

        async def cancel(self, ref: UpstreamRef) -> None:
            self.canceled.append(ref.id)

    async with httpx.AsyncClient() as http:
        inner = WithCancel()
        adapter = complete(inner, ctx(http))
        await adapter.cancel(UpstreamRef(id="u-1"))
        assert inner.canceled == ["u-1"]
        assert await adapter.find(SubmitAttempt.first("j"), Route("minimal", "m")) is None  # the default
