"""What the routing tests share: fake fal and kling upstreams on real ports, the
environment that points a gateway at both, and a gateway configured only by such an
environment (as an operator would configure it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.conftest import Gateway
from vidgate.config import Settings
from vidgate.runtime.app import create_app
from vidgate.runtime.roles import Role
from vidgate.testing.fake import FakeScript, FakeUpstream
from vidgate.testing.fakes import fake_class
from vidgate.testing.fakes.kling import TEST_SECRET_KEY
from vidgate.testing.server import serve_in_thread


@pytest.fixture
def fake_latency_s() -> float:
    """How long the fakes take over a job (a test module may override this fixture)."""
    return 0.3


@pytest.fixture
def fakes(fake_latency_s: float) -> Iterator[dict[str, FakeUpstream]]:
    with ExitStack() as stack:
        running: dict[str, FakeUpstream] = {}
        for name in ("fal", "kling"):
            script = FakeScript(latency_s=fake_latency_s, video_seconds=5)
            fake = fake_class(name)(api_key=f"{name}-key", script=script)
            fake.base_url = stack.enter_context(serve_in_thread(fake.app()))
            running[name] = fake
        yield running


def live_env(fakes: dict[str, FakeUpstream]) -> dict[str, str]:
    """Both fakes configured, fal first in the environment, kling with its secret key."""
    return {
        "VIDGATE_FAL_API_KEY": "fal-key",
        "VIDGATE_FAL_BASE_URL": fakes["fal"].base_url,
        "VIDGATE_KLING_API_KEY": "kling-key",
        "VIDGATE_KLING_BASE_URL": fakes["kling"].base_url,
        "VIDGATE_KLING_SECRET_KEY": TEST_SECRET_KEY,
    }


async def live_gateway(
    settings: Settings, env: dict[str, str], *, role: Role = Role.ALL, run_worker: bool = True
) -> AsyncIterator[Gateway]:
    """A gateway configured by ``env``, its lifespan running while the caller's ``async for``
    body runs."""
    app = create_app(settings, role=role, run_worker=run_worker, env=env)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield Gateway(app.state.services, client, app.state.runtime)
