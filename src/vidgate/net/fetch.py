"""Fetching a URL a user gave us: pinned, every redirect hop re-checked, capped in size and time.

``fetch_bytes(client, url, ...)`` must be given a client from
``vidgate.net.urlguard.pinned_client(guard, follow_redirects=True)``: the pinned
transport resolves and checks the address of every connection, so a redirect
from an allowed host to a loopback, private, link-local or metadata address is
refused before any connection is made to it.

What a tenant may read of a failure is deliberately little. A refused address is
"input URL not allowed" (not which address, not why); an answer that is not a
success is its status code only. The body of a refused or failed answer is never
read, so it can never end up in a job's error.
"""

from __future__ import annotations

import asyncio

import httpx

from vidgate.errors import InvalidRequest
from vidgate.net.urlguard import BlockedAddress

NOT_ALLOWED = "input URL not allowed"


class FetchRefused(InvalidRequest):
    """The URL, or a hop it redirected to, points somewhere vidgate does not call."""

    code = "url_not_allowed"


class FetchFailed(InvalidRequest):
    """The fetch did not give a usable answer (status, size, time, transport)."""

    code = "url_fetch_failed"


async def fetch_bytes(
    client: httpx.AsyncClient,
    url: str,
    *,
    param: str = "url",
    max_bytes: int,
    timeout_s: float,
) -> tuple[bytes, str]:
    """GET ``url`` whole: (body, content type). Raises ``FetchRefused`` or ``FetchFailed``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(client, url, param=param, max_bytes=max_bytes)
    except TimeoutError:
        raise FetchFailed(f"{param}: fetching it took longer than {timeout_s:g} s", param=param) from None


async def _fetch(client: httpx.AsyncClient, url: str, *, param: str, max_bytes: int) -> tuple[bytes, str]:
    try:
        async with client.stream("GET", url) as response:
            if not response.is_success:
                raise FetchFailed(f"{param}: the server answered HTTP {response.status_code}", param=param)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and (len(declared) > 15 or int(declared) > max_bytes):
                raise FetchFailed(f"{param}: larger than {max_bytes} bytes", param=param)
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    raise FetchFailed(f"{param}: larger than {max_bytes} bytes", param=param)
            return bytes(data), response.headers.get("content-type", "")
    except (BlockedAddress, httpx.UnsupportedProtocol, httpx.InvalidURL):
        raise FetchRefused(NOT_ALLOWED, param=param) from None
    except httpx.TooManyRedirects:
        raise FetchFailed(f"{param}: too many redirects", param=param) from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{param}: the fetch failed ({type(exc).__name__})", param=param) from None
