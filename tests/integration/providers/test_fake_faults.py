"""The fakes' generic fault tools: chaos, the submissions record, callback modes.

Chaos and submissions run in process where no clock is involved; slowness, callbacks
and the ``vidgate fake-upstream`` command run on real ports.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as HttpRoute

from tests.integration.providers.conftest import make_ctx
from tests.integration.providers.test_luma import REQ as LUMA_REQ
from tests.integration.providers.test_luma import ROUTE as LUMA_ROUTE
from vidgate.providers.base import SubmitAttempt, UpstreamProtocolError, UpstreamTimeout
from vidgate.providers.luma import LumaAdapter
from vidgate.testing.chaos import Chaos
from vidgate.testing.fake import FakeScript
from vidgate.testing.fakes.luma import LumaFake
from vidgate.testing.server import free_port, serve_in_thread

BASE = "http://fake.test"
CREATE = "/dream-machine/v1/generations/video"
AUTH = {"Authorization": "Bearer test-key"}
BODY = {"model": "ray-2", "prompt": "a paper boat"}


def luma(chaos: Chaos | None = None, seed: int | None = 7, latency_s: float = 0.2) -> LumaFake:
    fake = LumaFake(script=FakeScript(latency_s=latency_s), chaos=chaos, seed=seed)
    fake.base_url = BASE
    return fake


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    """``client(fake)``: an in-process client for the fake's ASGI app (chaos included)."""
    clients: list[httpx.AsyncClient] = []

    def make(fake: LumaFake) -> httpx.AsyncClient:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()), base_url=BASE)
        clients.append(http)
        return http

    yield make
    for http in clients:
        await http.aclose()


# ------------------------------------------------------------------ chaos


def test_chaos_spec_parsing() -> None:
    chaos = Chaos.parse("5xx=0.2, 429=0.05,slow=0.1,malformed=0.05", slow_s=3)
    assert (chaos.p_5xx, chaos.p_429, chaos.p_slow, chaos.p_malformed, chaos.slow_s) == (
        0.2,
        0.05,
        0.1,
        0.05,
        3,
    )
    assert chaos.active and not Chaos.parse("").active
    for bad in ("5xx=2", "5xx=0.6,429=0.6", "boom=0.1", "5xx", "5xx=lots"):
        with pytest.raises(ValueError):
            Chaos.parse(bad)


async def test_a_5xx_or_429_creates_nothing(client: Any) -> None:
    fake = luma(Chaos(p_5xx=1.0))
    http = client(fake)
    answer = await http.post(CREATE, json=BODY, headers=AUTH)
    assert answer.status_code == 503
    fake.chaos.chaos = Chaos(p_429=1.0)
    answer = await http.post(CREATE, json=BODY, headers=AUTH)
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "1")
    assert fake.submissions() == []
    assert [outcome for _, _, outcome in fake.chaos.log] == ["5xx", "429"]


async def test_a_malformed_submit_still_creates_the_job(client: Any) -> None:
    fake = luma(Chaos(p_malformed=1.0))
    http = client(fake)
    answer = await http.post(CREATE, json=BODY, headers=AUTH)
    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert len(fake.submissions()) == 1  # accepted, though nobody can read the acceptance
    # The fake's own controls are never chaotic.
    assert (await http.get("/__fake/submissions")).json()[0]["prompt"] == "a paper boat"


async def test_chaos_draws_repeat_with_the_same_seed(client: Any) -> None:
    mix = Chaos(p_5xx=0.3, p_429=0.2, p_malformed=0.2)

    async def outcomes(seed: int) -> list[int]:
        http = client(luma(mix, seed=seed))
        return [(await http.post(CREATE, json=BODY, headers=AUTH)).status_code for _ in range(30)]

    first = await outcomes(11)
    assert first == await outcomes(11)
    assert {503, 429, 201} <= set(first)  # all kinds show up in 30 draws with this seed


async def test_chaos_can_be_set_over_http(client: Any) -> None:
    fake = luma()
    http = client(fake)
    assert (await http.post("/__fake__/chaos", json={"spec": "5xx=1", "seed": 3})).status_code == 200
    assert (await http.post(CREATE, json=BODY, headers=AUTH)).status_code == 503
    assert (await http.post("/__fake__/chaos", json={"spec": "nope=1"})).status_code == 400
    assert (await http.post("/__fake__/chaos", json={"spec": ""})).status_code == 200
    assert (await http.post(CREATE, json=BODY, headers=AUTH)).status_code == 201


async def test_a_slow_submit_is_an_unknown_outcome_on_a_real_port(
    serve_fake: Any, http: httpx.AsyncClient
) -> None:
    fake = luma(Chaos(p_slow=1.0, slow_s=1.5))
    adapter = LumaAdapter(make_ctx(http, serve_fake(fake), timeout_s=0.3))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await adapter.submit(LUMA_REQ, LUMA_ROUTE, SubmitAttempt.first("job-slow"))
    assert time.monotonic() - started < 1.4  # our time limit, not the fake's delay
    assert caught.value.outcome_unknown
    assert len(fake.submissions()) == 1  # the slow answer's job exists upstream


async def test_a_malformed_submit_through_the_adapter(serve_fake: Any, http: httpx.AsyncClient) -> None:
    fake = luma(Chaos(p_malformed=1.0))
    adapter = LumaAdapter(make_ctx(http, serve_fake(fake)))
    with pytest.raises(UpstreamProtocolError) as caught:
        await adapter.submit(LUMA_REQ, LUMA_ROUTE, SubmitAttempt.first("job-garbled"))
    assert caught.value.outcome_unknown
    assert len(fake.submissions()) == 1


# ------------------------------------------------------------ submissions


async def test_submissions_name_the_gateway_job_and_cancellations(
    serve_fake: Any, http: httpx.AsyncClient
) -> None:
    fake = luma()
    fake.script.send_callbacks = False
    base = serve_fake(fake)
    adapter = LumaAdapter(make_ctx(http, base, callback_url="https://gw.example/callbacks/luma"))
    first = await adapter.submit(LUMA_REQ, LUMA_ROUTE, SubmitAttempt.first("job-a"))
    await adapter.submit(LUMA_REQ, LUMA_ROUTE, SubmitAttempt.first("job-b"))
    await adapter.cancel(first)
    listed = (await http.get(f"{base}/__fake/submissions")).json()
    assert [(s["reference"], s["canceled"]) for s in listed] == [("job-a", True), ("job-b", False)]
    assert listed[0] == {
        "upstream_id": first.id,
        "prompt": LUMA_REQ.prompt,
        "reference": "job-a",
        "idempotency_key": None,  # Luma honours none
        "status": "canceled",
        "canceled": True,
    }
    assert (await http.get(f"{base}/__fake__/submissions")).json() == listed


# --------------------------------------------------------- callback modes


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[float, dict[str, Any]]]]]:
    """A callback endpoint on a real port: (url, [(arrival time, payload)])."""
    calls: list[tuple[float, dict[str, Any]]] = []

    async def endpoint(request: Request) -> JSONResponse:
        calls.append((time.monotonic(), json.loads(await request.body())))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[HttpRoute("/cb", endpoint, methods=["POST"])])
    with serve_in_thread(app) as base:
        yield f"{base}/cb", calls


async def submit_with_callbacks(
    serve_fake: Any, http: httpx.AsyncClient, url: str, modes: list[str], delay_s: float = 0.0
) -> tuple[LumaFake, str]:
    fake = luma(latency_s=0.3)
    fake.script.callback_modes = modes
    fake.script.callback_delay_s = delay_s
    adapter = LumaAdapter(make_ctx(http, serve_fake(fake), callback_url=url))
    ref = await adapter.submit(LUMA_REQ, LUMA_ROUTE, SubmitAttempt.first("job-cb"))
    return fake, ref.id


async def wait_for(condition: Any, within_s: float = 8.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_callbacks_twice(serve_fake: Any, http: httpx.AsyncClient, receiver: Any) -> None:
    url, calls = receiver
    fake, _ = await submit_with_callbacks(serve_fake, http, url, ["twice"])
    await wait_for(lambda: sum(c[1]["state"] == "completed" for c in calls) == 2)
    states = [c[1]["state"] for c in calls]
    assert states.count("dreaming") == 2 and states.count("completed") == 2
    await wait_for(lambda: not fake._background)


async def test_callbacks_out_of_order(serve_fake: Any, http: httpx.AsyncClient, receiver: Any) -> None:
    url, calls = receiver
    fake, _ = await submit_with_callbacks(serve_fake, http, url, ["out_of_order"])
    await wait_for(lambda: len(calls) == 3)
    assert [c[1]["state"] for c in calls] == ["dreaming", "completed", "dreaming"]  # stale last
    await wait_for(lambda: not fake._background)


async def test_callbacks_late(serve_fake: Any, http: httpx.AsyncClient, receiver: Any) -> None:
    url, calls = receiver
    started = time.monotonic()
    fake, _ = await submit_with_callbacks(serve_fake, http, url, ["late"], delay_s=1.0)
    await wait_for(lambda: any(c[1]["state"] == "completed" for c in calls))
    assert min(arrived for arrived, _ in calls) - started >= 1.0
    await wait_for(lambda: not fake._background)


async def test_callbacks_for_an_unknown_id(serve_fake: Any, http: httpx.AsyncClient, receiver: Any) -> None:
    url, calls = receiver
    fake, upstream_id = await submit_with_callbacks(serve_fake, http, url, ["unknown_id"])
    await wait_for(lambda: any(c[1]["state"] == "completed" for c in calls))
    assert all(c[1]["id"] != upstream_id and c[1]["id"] not in fake.jobs for c in calls)
    await wait_for(lambda: not fake._background)


# -------------------------------------------------------------------- CLI


def test_the_fake_upstream_command_plays_chaos() -> None:
    port = free_port()
    command = [sys.executable, "-m", "vidgate", "fake-upstream", "luma", "--port", str(port)]
    command += ["--chaos", "5xx=1", "--seed", "1", "--callback-mode", "twice"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    answer = httpx.post(f"http://127.0.0.1:{port}{CREATE}", json=BODY, headers=AUTH)
                    break
                except httpx.ConnectError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "the fake did not start"
                    time.sleep(0.1)
            assert answer.status_code == 503
            assert httpx.get(f"http://127.0.0.1:{port}/__fake/submissions").json() == []
        finally:
            process.terminate()
            process.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "vidgate", "fake-upstream", "luma", "--chaos", "5xx=2"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 2
