"""Serving a dialect at the root of its own port or host name.

Some clients drop any path in their base URL (Apiframe's Node SDK resolves
``new URL('/v2/jobs', base)``, which keeps only the origin). For them a dialect is
also reachable without its prefix:

* on a port of its own (``vidgate serve --dialect-port apiframe=8003``, or
  ``VIDGATE_DIALECT_PORTS=apiframe=8003,thalam=8001``): every path on that port
  is the dialect's;
* under a host name of its own (``VIDGATE_DIALECT_HOSTS=api.example.com=apiframe``),
  chosen by the ``Host`` header;
* for paths the dialect declares free at the root of the main port
  (``Dialect.root_paths``, Apiframe's ``/v2/``).

It is a path rewrite in front of everything else (``/v2/jobs`` becomes
``/apiframe/v2/jobs``), so error envelopes, rate limits and routes behave exactly
as under the prefix. The gateway's own shared paths (signed media links, health,
upstream callbacks) are never rewritten, so the links a dialect hands out work on
its port too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

SHARED_PATHS = ("/media/", "/healthz", "/callbacks/")


class RootConfigError(ValueError):
    """A ``name=value`` list that cannot be read, or names an unknown dialect."""


def parse_pairs(text: str | Iterable[str], what: str) -> dict[str, str]:
    """``"a=1,b=2"`` (or ``["a=1", "b=2"]``) as ``{"a": "1", "b": "2"}``."""
    items = text.split(",") if isinstance(text, str) else list(text)
    pairs: dict[str, str] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        left, sep, right = item.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise RootConfigError(f"{what}: {item!r} is not NAME=VALUE")
        pairs[left.strip()] = right.strip()
    return pairs


@dataclass(frozen=True, slots=True)
class RootMap:
    """Where each dialect is served at the root: by port, by host name, by path."""

    by_port: dict[int, str] = field(default_factory=dict)  # port -> dialect prefix
    by_host: dict[str, str] = field(default_factory=dict)  # host name (lower case) -> prefix
    root_paths: tuple[tuple[str, str], ...] = ()  # (path prefix, dialect prefix)

    @classmethod
    def build(
        cls,
        prefixes: Mapping[str, str],
        *,
        ports: Mapping[str, str] | None = None,
        hosts: Mapping[str, str] | None = None,
        root_paths: Iterable[tuple[str, str]] = (),
    ) -> RootMap:
        """From dialect name -> prefix, ``{dialect: port}`` and ``{host: dialect}``."""
        known = ", ".join(prefixes)
        by_port: dict[int, str] = {}
        for name, port in (ports or {}).items():
            if name not in prefixes:
                raise RootConfigError(f"dialect ports: unknown dialect {name!r}; known: {known}")
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise RootConfigError(f"dialect ports: {port!r} is not a port number")
            if int(port) in by_port:
                raise RootConfigError(f"dialect ports: port {port} is given twice")
            by_port[int(port)] = prefixes[name]
        by_host: dict[str, str] = {}
        for host, name in (hosts or {}).items():
            if name not in prefixes:
                raise RootConfigError(f"dialect hosts: unknown dialect {name!r}; known: {known}")
            by_host[host.lower()] = prefixes[name]
        return cls(by_port, by_host, tuple(root_paths))

    def prefix_for(self, scope: Scope) -> tuple[str | None, bool]:
        """The prefix to serve under, and whether the whole origin belongs to it."""
        host = _host(scope)
        if host is not None and host in self.by_host:
            return self.by_host[host], True
        server = scope.get("server")
        if server and server[1] is not None and int(server[1]) in self.by_port:
            return self.by_port[int(server[1])], True
        path: str = scope["path"]
        for root, prefix in self.root_paths:
            if path.startswith(root):
                return prefix, False
        return None, False

    def rewrite(self, scope: Scope) -> Scope:
        path: str = scope["path"]
        prefix, whole = self.prefix_for(scope)
        if prefix is None or path.startswith(prefix.rstrip("/") + "/"):
            return scope
        if whole and path.startswith(SHARED_PATHS):
            return scope
        new_path = prefix.rstrip("/") + path
        raw = scope.get("raw_path")
        new_raw = prefix.rstrip("/").encode() + raw if isinstance(raw, bytes) else None
        return {**scope, "path": new_path, "raw_path": new_raw or new_path.encode()}


def _host(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"host":
            text = bytes(value).decode("latin-1").strip().lower()
            if text.startswith("["):  # an IPv6 literal
                return text.partition("]")[0] + "]"
            return text.partition(":")[0] or None
    return None


class DialectRoots:
    """A pure ASGI middleware applying a ``RootMap`` (outermost, before any other)."""

    def __init__(self, app: ASGIApp, *, roots: RootMap) -> None:
        self.app = app
        self.roots = roots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = self.roots.rewrite(scope)
        await self.app(scope, receive, send)
