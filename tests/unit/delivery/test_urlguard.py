"""The SSRF guard's decisions, without a network (the resolver is a table)."""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from vidgate.errors import InvalidRequest
from vidgate.net.urlguard import Allowlist, UrlGuard, forbidden_reason, parse_ip_literal

TABLE = {
    "public.example.test": ["93.184.216.34"],
    "private.example.test": ["192.168.7.7"],
    "mixed.example.test": ["93.184.216.34", "10.0.0.5"],
    "v6.example.test": ["2606:2800:220:1:248:1893:25c8:1946"],
    "mapped.example.test": ["::ffff:169.254.169.254"],
}


async def resolver(host: str, port: int) -> list[str]:
    if host == "slow.example.test":
        await asyncio.sleep(10)
    if host not in TABLE:
        raise OSError("unknown host")
    return TABLE[host]


def guard(allowlist: str = "") -> UrlGuard:
    return UrlGuard(allowlist, resolver=resolver, resolve_timeout_s=0.2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:10.0.0.1", "::ffff:a00:1"),
        ("169.254.169.254.", "169.254.169.254"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("0x", "0.0.0.0"),
        ("08.1.1.1", None),
    ],
)
def test_ip_literals_are_read_as_the_os_reads_them(text: str, expected: str | None) -> None:
    found = parse_ip_literal(text)
    assert (str(found) if found is not None else None) == expected


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "64:ff9b::a00:1",
        "2001:db8::1",
        "fec0::1",
    ],
)
def test_inside_addresses_are_forbidden(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@given(st.ip_addresses(v=4))
def test_every_private_ipv4_is_refused_also_when_mapped_into_ipv6(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (forbidden_reason(address) is None) == (forbidden_reason(mapped) is None)
    if not address.is_global:
        assert forbidden_reason(address) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/",
        "http://api.localhost/",
        "http://[::1]:80/",
        "http://private.example.test/",
        "http://mixed.example.test/",
        "http://mapped.example.test/",
        "ftp://public.example.test/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "//public.example.test/x",
        "http://public.example.test\\@127.0.0.1/",
        "http:///nohost",
        "http://unknown.example.test/",
        "http://slow.example.test/",
        "http://metadata.google.internal/",
        "http://0/",
        "not a url",
    ],
)
async def test_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await guard()(url, "webhook_url")
    assert caught.value.param == "webhook_url"
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://public.example.test/x.png",
        "http://public.example.test:8080/hook",
        "https://v6.example.test/",
        "https://93.184.216.34/x",
        "HTTPS://PUBLIC.EXAMPLE.TEST/",
    ],
)
async def test_allowed(url: str) -> None:
    await guard()(url, "image_url")


async def test_allowlist_hosts_and_networks() -> None:
    allow = guard("127.0.0.1, private.example.test, 10.0.0.0/8, ::1")
    for url in (
        "http://127.0.0.1:9/",
        "http://private.example.test/",
        "http://10.9.9.9/",
        "http://[::1]/",
        "http://mixed.example.test/",
    ):
        await allow(url, "webhook_url")
    with pytest.raises(InvalidRequest):
        await allow("http://127.0.0.2/", "webhook_url")
    with pytest.raises(InvalidRequest):
        await allow("gopher://127.0.0.1/", "webhook_url")  # the scheme rule still holds
    assert not Allowlist("")
    assert Allowlist(" , ").hosts == set()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_data_urls() -> None:
    png = base64.b64encode(_png()).decode()
    await guard()(f"data:image/png;base64,{png}", "image_url")
    await guard()(f"data:image/png;base64,{png}", "reference_image_urls")
    for url, param in [
        (f"data:image/png;base64,{png}", "webhook_url"),
        ("data:image/png;base64," + base64.b64encode(b"GIF89a junk").decode(), "image_url"),
        ("data:text/html,<script>", "image_url"),
        ("data:image/png;base64", "image_url"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            await guard()(url, param)
        assert caught.value.param == param


async def test_an_allowlisted_name_is_not_even_looked_up_when_vetted() -> None:
    async def offline(host: str, port: int) -> list[str]:
        raise OSError("no network here")

    trusting = UrlGuard("example.com", resolver=offline)
    await trusting("https://example.com/image.png", "image_url")
    with pytest.raises(InvalidRequest, match="looking up"):
        await trusting("https://example.org/image.png", "image_url")
