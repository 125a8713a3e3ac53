"""A real server on a loopback port with small body bounds, a funded key, and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from vidgate.api.dialects import DIALECTS
from vidgate.api.errors import ErrorRouter
from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.config import Settings
from vidgate.errors import GatewayError
from vidgate.runtime.app import create_app
from vidgate.store.engine import open_database
from vidgate.store.migrate import migrate
from vidgate.testing.server import serve_in_thread

MB = 1024 * 1024

# Every route that reads a request body, with a body that is otherwise plausible.
POST_ROUTES = [
    "/v1/videos",
    "/v1/quotes",
    "/v1/webhook_endpoints",
    "/thalam/v1/videos/generations",
    "/venice/api/v1/video/queue",
    "/venice/api/v1/video/retrieve",
    "/venice/api/v1/video/complete",
    "/venice/api/v1/video/quote",
    "/minimax/v1/video_generation",
    "/apiframe/v2/videos/generate",
    "/kyma/v1/video/generations",
    "/kyma/v1/videos/generations",
    "/kyma/v1/genmedia/jobs",
]


@dataclass
class Served:
    host: str
    port: int
    key: str
    settings: Settings

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def auth_headers(self, path: str) -> dict[str, str]:
        """The key in the header each dialect reads it from."""
        if path.startswith("/apiframe"):
            return {"X-API-Key": f"afk_{self.key}"}
        if path.startswith("/thalam"):
            return {"Authorization": f"Bearer tl-{self.key}"}
        return {"Authorization": f"Bearer {self.key}"}


def rendered(path: str, error: GatewayError) -> tuple[int, Any]:
    """What the dialect that owns ``path`` answers for ``error``: (status, JSON body)."""
    router = ErrorRouter()
    for dialect in DIALECTS:
        router.register(dialect.prefix, dialect.render_error)
    response = router.renderer_for(path)(error)
    return response.status_code, json.loads(bytes(response.body))


async def _funded_key(settings: Settings) -> str:
    db = open_database(settings)
    try:
        await migrate(db)
        async with db.transaction() as conn:
            account = await ensure_account(conn, "hardening")
            issued = await issue_key(conn, account, mode="test")
            await top_up(conn, account, micros=50_000_000, mode="test")
        return issued.secret
    finally:
        await db.dispose()


@pytest.fixture
def bounded_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"max_body_bytes": 1 * MB, "body_idle_timeout_s": 1.0, "body_timeout_s": 3.0}
    )


@pytest.fixture
def served(bounded_settings: Settings) -> Iterator[Served]:
    key = asyncio.run(_funded_key(bounded_settings))
    app = create_app(bounded_settings, run_worker=False, env={})
    with serve_in_thread(app) as base:
        host, port = base.removeprefix("http://").split(":")
        yield Served(host, int(port), key, bounded_settings)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def exchange(
    served: Served,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes] | list[bytes],
    *,
    then_close: bool = False,
    timeout_s: float = 10.0,
) -> Answer | None:
    """Send a request head and body chunks (raw bytes: chunk framing is the caller's),
    stopping as soon as the server answers; then read the answer, or close (None)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {served.host}:{served.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((served.host, served.port), timeout=timeout_s) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for chunk in chunks:
                sock.setblocking(False)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break  # the answer has started: stop sending
                except BlockingIOError:
                    pass
                sock.setblocking(True)
                sock.settimeout(timeout_s)
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading; its answer is waiting
        if then_close:
            return None
        sock.setblocking(True)
        sock.settimeout(timeout_s)
        raw = b""
        while b"\r\n\r\n" not in raw:
            part = sock.recv(65536)
            if not part:
                raise AssertionError(f"{path}: the connection closed without an answer")
            raw += part
        head, _, body = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        found = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        while len(body) < int(found.get("content-length", "0")):
            part = sock.recv(65536)
            if not part:
                break
            body += part
        return Answer(int(status_line.split()[1]), found, body)


def chunked(parts: list[bytes]) -> list[bytes]:
    """``parts`` in chunked transfer coding, with the closing zero chunk."""
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]
