"""Fixtures for adapter-against-fake tests: a fake on a real port, a context for the adapter."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import av
import httpx
import pytest

from vidgate.providers.base import ProviderContext
from vidgate.testing.fake import FakeUpstream
from vidgate.testing.server import serve_in_thread


@pytest.fixture
def serve_fake() -> Iterator[Any]:
    """``serve_fake(fake) -> base_url``: serves the fake on a loopback port for the test."""
    stack: list[Any] = []

    def start(fake: FakeUpstream) -> str:
        manager = serve_in_thread(fake.app())
        base_url = manager.__enter__()
        stack.append(manager)
        fake.base_url = base_url
        return base_url

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_ctx(
    http: httpx.AsyncClient,
    base_url: str,
    api_key: str | None = "test-key",
    *,
    timeout_s: float = 5.0,
    submit_timeout_s: float | None = None,
    callback_url: str | None = None,
    user_http: httpx.AsyncClient | None = None,
    **options: str,
) -> ProviderContext:
    return ProviderContext(
        http=http,
        api_key=api_key,
        base_url=base_url,
        options=options,
        callback_url=callback_url,
        timeout_s=timeout_s,
        submit_timeout_s=timeout_s if submit_timeout_s is None else submit_timeout_s,
        user_http=user_http,
    )


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def assert_mp4(data: bytes) -> None:
    """The bytes are a playable H.264 MP4 (probed with PyAV, not just sniffed)."""
    assert data[4:8] == b"ftyp"
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert container.duration and container.duration > 0
