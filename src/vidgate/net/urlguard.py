"""The SSRF guard: every URL vidgate fetches or calls for a user is checked here first.

``UrlGuard(allowlist)`` is awaited as ``guard(url, param)`` and raises
``InvalidRequest(param=param)`` (a clear 400) unless the URL is http(s) and its
host, resolved, lands only on public unicast addresses. Refused: loopback,
private (RFC 1918, ULA), link-local (and so the 169.254.169.254 metadata
address), CGNAT (100.64/10), multicast, reserved, unspecified, documentation and
benchmark ranges, IPv6 forms that embed any of those (IPv4-mapped, 6to4, NAT64,
Teredo), and the odd IPv4 spellings ``inet_aton`` accepts (``2130706433``,
``0x7f.1``, ``0177.0.0.1``), which are read exactly as the OS would read them.

``data:`` URLs are allowed only for image parameters, and only when they decode
to a real image (``vidgate.media.probe.check_image``).

``VIDGATE_URL_ALLOWLIST`` (comma-separated hosts and CIDRs) lets tests and
private deployments through: a listed host name skips the address check (and,
when a URL is vetted, the lookup too), a resolved address inside a listed
network is accepted.

A check at submit time is not enough on its own: DNS can answer differently
when the connection is made (rebinding). ``pinned_client`` therefore resolves
and checks again for every request and connects to the checked address itself,
keeping the original name for the Host header and TLS (SNI and certificate).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

from vidgate.errors import InvalidRequest
from vidgate.media.probe import check_image

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_DATA_URL_IMAGE_BYTES = 20_000_000
_IMAGE_PARAM_WORDS = ("image", "frame", "reference", "input_reference")

# IANA special-purpose blocks, refused even if a Python version calls one "global".
_BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
# Cloud metadata services reachable by name on the instances they serve.
_BLOCKED_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
)


class BlockedAddress(httpx.ConnectError):
    """The pinned transport refused to connect: the host resolves to a forbidden address."""


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, in every form ``inet_aton`` accepts.

    ``[::1]`` and ``::1`` -> ``::1``; ``2130706433``, ``0x7f000001``, ``0177.1`` and
    ``127.1`` -> ``127.0.0.1``. Returns None for a name that needs resolving.
    """
    text = host.strip().strip("[]").rstrip(".")
    if "%" in text:  # an IPv6 zone id (fe80::1%eth0): link-local by construction
        text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        value = _inet_number(part)
        if value is None:
            return None
        numbers.append(value)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def _inet_number(part: str) -> int | None:
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:] or "0", 16)
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        return int(lowered, 10) if lowered.isdigit() else None
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why vidgate must not connect to ``address`` for a user, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)) is not None:
        reason = forbidden_reason(inner)
        return f"{reason} (inside {address})" if reason else None
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives there)"),
        (address in ipaddress.ip_network("100.64.0.0/10"), "a carrier-grade NAT address"),
        (address.is_private, "a private address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_reserved, "a reserved address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    if any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version):
        return "a special-purpose address"
    if not address.is_global:
        return "not a public address"
    return None


class Allowlist:
    """Host names and networks the operator trusts (``VIDGATE_URL_ALLOWLIST``)."""

    def __init__(self, spec: str | Iterable[str] = "") -> None:
        entries = spec.split(",") if isinstance(spec, str) else list(spec)
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            literal = parse_ip_literal(entry)
            if literal is not None:
                self.networks.append(ipaddress.ip_network(literal))
            else:
                self.hosts.add(entry.rstrip("."))

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (blocking ``getaddrinfo``, run in a thread)."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class UrlGuard:
    """``await guard(url, param)``: raise ``InvalidRequest(param=param)`` unless safe to fetch."""

    def __init__(
        self,
        allowlist: str | Iterable[str] = "",
        *,
        resolver: Resolver | None = None,
        resolve_timeout_s: float = 3.0,
    ) -> None:
        self.allowlist = Allowlist(allowlist)
        self.resolver = resolver or system_resolver
        self.resolve_timeout_s = resolve_timeout_s

    async def __call__(self, url: str, param: str) -> None:
        text = (url or "").strip()
        if text[:5].lower() == "data:":
            await self._check_data_url(text, param)
            return
        parsed = self._parse(text, param)
        if self.allowlist.allows_host(parsed.host):
            return  # trusted by name: no lookup now (the pinned client still resolves when it connects)
        await self.addresses(
            parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), param=param
        )

    def _parse(self, url: str, param: str) -> httpx.URL:
        if any(c in url for c in "\\\t\r\n ") or any(ord(c) < 32 for c in url):
            raise InvalidRequest(f"{param} is not a well-formed URL", param=param, code="invalid_url")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            # Say why when the host is an address spelt oddly (``0177.0.0.1``), else just refuse.
            with contextlib.suppress(ValueError):
                host = urlsplit(url).hostname or ""
                if (literal := parse_ip_literal(host)) is not None:
                    self._check_address(literal, host, param)
            raise InvalidRequest(
                f"{param} is not a well-formed URL", param=param, code="invalid_url"
            ) from None
        if parsed.scheme not in ("http", "https"):
            shown = parsed.scheme or "no scheme"
            raise InvalidRequest(
                f"{param} must be an http(s) URL (got {shown})", param=param, code="invalid_url"
            )
        if not parsed.host:
            raise InvalidRequest(f"{param} has no host", param=param, code="invalid_url")
        return parsed

    async def addresses(self, host: str, port: int, *, param: str = "url") -> list[str]:
        """The checked addresses to connect to for ``host``; refuses if any is forbidden.

        One bad answer among several is enough to refuse: a resolver that mixes a
        public and a private address is the classic rebinding setup.
        """
        host = host.strip("[]")
        literal = parse_ip_literal(host)
        if literal is not None:
            self._check_address(literal, host, param)
            return [str(literal)]
        name = host.lower().rstrip(".")
        if self.allowlist.allows_host(name):
            return await self._resolve(name, port, param)
        if name in _BLOCKED_NAMES or name == "localhost" or name.endswith(".localhost"):
            raise InvalidRequest(
                f"{param} points at {host}, which is not reachable for user requests",
                param=param,
                code="url_not_allowed",
            )
        found = await self._resolve(name, port, param)
        for text in found:
            self._check_address(ipaddress.ip_address(text.split("%", 1)[0]), host, param)
        return found

    async def _resolve(self, host: str, port: int, param: str) -> list[str]:
        try:
            found = await asyncio.wait_for(self.resolver(host, port), timeout=self.resolve_timeout_s)
        except (TimeoutError, OSError, UnicodeError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else "failed"
            raise InvalidRequest(
                f"{param}: looking up {host} {why}", param=param, code="url_unresolvable"
            ) from None
        if not found:
            raise InvalidRequest(f"{param}: {host} has no address", param=param, code="url_unresolvable")
        return found

    def _check_address(self, address: IPAddress, host: str, param: str) -> None:
        if self.allowlist.allows_address(address):
            return
        reason = forbidden_reason(address)
        if reason is not None:
            shown = host if host == str(address) else f"{host} ({address})"
            raise InvalidRequest(
                f"{param} points at {shown}, {reason}; vidgate only calls public addresses",
                param=param,
                code="url_not_allowed",
            )

    async def _check_data_url(self, url: str, param: str) -> None:
        if not any(word in param.lower() for word in _IMAGE_PARAM_WORDS):
            raise InvalidRequest(
                f"{param} must be an http(s) URL, not a data: URL", param=param, code="invalid_url"
            )
        header, sep, payload = url[5:].partition(",")
        if not sep or not header.lower().startswith("image/"):
            raise InvalidRequest(f"{param}: a data: URL must carry an image (data:image/...)", param=param)
        try:
            if header.lower().endswith(";base64"):
                if len(payload) > MAX_DATA_URL_IMAGE_BYTES * 4 // 3 + 8:
                    raise ValueError(f"the image is larger than {MAX_DATA_URL_IMAGE_BYTES} bytes")
                data = base64.b64decode(payload, validate=False)
            else:
                data = unquote_to_bytes(payload)
            await asyncio.to_thread(check_image, data, max_bytes=MAX_DATA_URL_IMAGE_BYTES)
        except (ValueError, binascii.Error) as exc:
            raise InvalidRequest(f"{param}: {exc}", param=param, code="invalid_image") from None


class PinnedTransport(httpx.AsyncBaseTransport):
    """Connects to the address the guard checked, never to a second DNS answer.

    The request's URL host is swapped for the checked IP; the Host header stays
    the name, and for https the name is sent as SNI and checked on the certificate.
    """

    def __init__(self, guard: UrlGuard, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise BlockedAddress(f"refusing the {url.scheme} scheme", request=request)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self.guard.addresses(url.host, port)
        except InvalidRequest as exc:
            raise BlockedAddress(exc.message, request=request) from None
        last: Exception | None = None
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=address),
                headers=request.headers,
                stream=request.stream,
                extensions=_extensions(request, url),
            )
            try:
                return await self.inner.handle_async_request(pinned)
            except httpx.ConnectError as exc:  # try the next checked address
                last = exc
        assert last is not None
        raise last

    async def aclose(self) -> None:
        await self.inner.aclose()


def _extensions(request: httpx.Request, url: httpx.URL) -> dict[str, Any]:
    extensions = dict(request.extensions)
    if url.scheme == "https":
        extensions.setdefault("sni_hostname", url.host)
    return extensions


def pinned_client(guard: UrlGuard, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection goes through ``PinnedTransport``.

    Environment proxies are ignored (a proxy would make the pinning meaningless),
    and redirects are not followed unless asked; when they are, each hop is checked.
    """
    kwargs.setdefault("follow_redirects", False)
    return httpx.AsyncClient(transport=PinnedTransport(guard), trust_env=False, **kwargs)
