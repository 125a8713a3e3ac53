"""The pinned transport connects to the checked address, keeping the name for Host and TLS."""

from __future__ import annotations

import httpx
import pytest

from vidgate.net.urlguard import BlockedAddress, PinnedTransport, UrlGuard, pinned_client


async def test_connects_to_the_checked_address_with_the_original_name() -> None:
    seen: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        return {"public.example.test": ["93.184.216.34"], "six.example.test": ["2606:2800:220:1::1"]}[host]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    guard = UrlGuard("", resolver=resolver)
    transport = PinnedTransport(guard, inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.post("https://public.example.test/hook?x=1", content=b"{}")).status_code == 204
        assert (await client.get("http://six.example.test:8080/")).status_code == 204
    first, second = seen
    assert first.url.host == "93.184.216.34" and first.url.query == b"x=1"
    assert first.headers["host"] == "public.example.test"
    assert first.extensions["sni_hostname"] == "public.example.test"
    assert second.url.host == "2606:2800:220:1::1" and second.url.port == 8080
    assert second.headers["host"] == "six.example.test:8080"
    assert "sni_hostname" not in second.extensions


async def test_a_second_dns_answer_pointing_inside_is_refused() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not connect")

    guard = UrlGuard("", resolver=rebinding)
    await guard("http://rebind.example.test/hook", "webhook_url")  # the check at submit passes
    transport = PinnedTransport(guard, inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(BlockedAddress, match="loopback"):
            await client.post("http://rebind.example.test/hook")


async def test_redirects_are_not_followed_by_default_and_checked_when_they_are() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest"})

    guard = UrlGuard("", resolver=resolver)
    async with pinned_client(guard) as client:
        assert client.follow_redirects is False
    transport = PinnedTransport(guard, inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(BlockedAddress, match="link-local"):
            await client.get("http://public.example.test/")
