"""An allowed host that redirects inside: every fetch of a user's URL refuses the hop, and
no connection ever reaches the private listener (issue 14, first "Done when").

Two real listeners on loopback: ``cdn.allowed.test`` (allowlisted by name, resolving to
127.0.0.1) answers every request with a 302 to wherever the test says, and a private
listener counts every connection it accepts and would answer with a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vidgate.api.webhooks import new_endpoint_secret
from vidgate.billing.accounts import ensure_account
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.keyring import Keyring
from vidgate.media.links import MediaLinks
from vidgate.net.fetch import NOT_ALLOWED, FetchRefused, fetch_bytes
from vidgate.net.urlguard import UrlGuard, pinned_client
from vidgate.store import delivery as store
from vidgate.store import webhook_endpoints as endpoint_store
from vidgate.store.engine import Database
from vidgate.store.events import append_event
from vidgate.store.migrate import migrate
from vidgate.webhooks.config import DeliveryConfig
from vidgate.webhooks.sender import OutboxSender

SECRET = b"instance-role-credentials"


@dataclass
class Listener:
    port: int = 0
    connections: int = 0
    location: str = ""  # where a redirecting listener sends its callers
    server: asyncio.Server | None = None
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            if self.location:
                writer.write(
                    f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
                    + f"Content-Length: {len(SECRET)}\r\n\r\n".encode()
                    + SECRET
                )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _listen(listener: Listener) -> Listener:
    listener.server = await asyncio.start_server(listener.handle, "127.0.0.1", 0)
    listener.port = listener.server.sockets[0].getsockname()[1]
    return listener


@pytest.fixture
async def private() -> AsyncIterator[Listener]:
    listener = await _listen(Listener())
    yield listener
    assert listener.server is not None
    listener.server.close()


@pytest.fixture
async def redirector() -> AsyncIterator[Listener]:
    listener = await _listen(Listener())
    yield listener
    assert listener.server is not None
    listener.server.close()


async def _resolver(host: str, _port: int) -> list[str]:
    table = {
        "cdn.allowed.test": ["127.0.0.1"],
        "rebind.example.test": ["127.0.0.1"],
        "metadata.example.test": ["169.254.169.254"],
        "mixed.example.test": ["93.184.216.34", "10.1.2.3"],
    }
    if host not in table:
        raise OSError(f"no such host {host}")
    return table[host]


def _guard() -> UrlGuard:
    return UrlGuard("cdn.allowed.test", resolver=_resolver)


def _targets(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/latest/meta-data/",
        f"http://localhost:{port}/",
        f"http://rebind.example.test:{port}/",
        f"http://2130706433:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://mixed.example.test:{port}/",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://metadata.example.test/computeMetadata/v1/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "file:///etc/passwd",
    ]


async def test_image_fetch_refuses_every_redirect_inside(private: Listener, redirector: Listener) -> None:
    async with pinned_client(_guard(), follow_redirects=True) as client:
        for target in _targets(private.port):
            redirector.location = target
            before = redirector.connections
            with pytest.raises(FetchRefused) as caught:
                await fetch_bytes(
                    client,
                    f"http://cdn.allowed.test:{redirector.port}/frame.png",
                    param="image_url",
                    max_bytes=1_000_000,
                    timeout_s=10,
                )
            assert redirector.connections == before + 1, target  # the allowed hop was made
            assert caught.value.message == NOT_ALLOWED
            assert SECRET.decode() not in str(caught.value)
    assert private.connections == 0


async def test_an_allowed_redirect_is_followed_and_capped(private: Listener, redirector: Listener) -> None:
    """The control: a hop to an allowed name is followed, so the refusals above are the guard's."""
    redirector.location = f"http://cdn.allowed.test:{private.port}/frame.png"
    async with pinned_client(_guard(), follow_redirects=True) as client:
        data, content_type = await fetch_bytes(
            client, f"http://cdn.allowed.test:{redirector.port}/a", max_bytes=1000, timeout_s=10
        )
        assert (data, content_type) == (SECRET, "image/png")
        with pytest.raises(Exception, match="larger than 5 bytes"):
            await fetch_bytes(client, f"http://cdn.allowed.test:{private.port}/", max_bytes=5, timeout_s=10)
    assert private.connections == 2


async def test_a_webhook_to_an_allowed_host_that_redirects_inside_is_not_followed(
    tmp_path: Path, private: Listener, redirector: Listener
) -> None:
    redirector.location = f"http://127.0.0.1:{private.port}/hook"
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}", keyring=Keyring(b"test-secret"))
    await migrate(db)
    try:
        fast = {"webhook_retry_base_s": "0.05", "webhook_cursor_grace_s": "0"}
        sender = OutboxSender(
            db,
            DeliveryConfig.from_settings(Settings(data_dir=tmp_path, extra=fast)),
            guard=_guard(),
            links=lambda: MediaLinks("http://x", b"s", 3600),
        )
        async with db.transaction() as conn:
            account = await ensure_account(conn, "redirected")
            await endpoint_store.insert_endpoint(
                conn,
                id="we_redirect",
                account_id=account.id,
                mode="test",
                url=f"http://cdn.allowed.test:{redirector.port}/hook",
                events=["*"],
                secret=new_endpoint_secret(),
                description="",
                created_at=utcnow(),
            )
            await append_event(
                conn, account_id=account.id, job_id=None, type="video.completed", payload={}, at=utcnow()
            )
        assert await sender.fan_out_once() == 1
        async with pinned_client(_guard()) as http:  # the sender's own client: redirects not followed
            assert await sender.deliver_once(http) == 1
        async with db.read() as conn:
            [delivery] = await store.list_deliveries(conn, account.id, "test", limit=10)
            attempts = (await store.attempts_of(conn, [delivery.id]))[delivery.id]
        assert redirector.connections == 1
        assert attempts[0].status_code == 302 and not attempts[0].succeeded
        assert private.connections == 0
    finally:
        await db.dispose()


async def test_a_worker_side_image_fetch_refuses_every_redirect_inside(
    private: Listener, redirector: Listener
) -> None:
    """ComfyUI uploads a user's first frame itself, in the worker: the same guarded fetch."""
    import json

    from tests.integration.providers.test_comfyui import I2V, LTX, REQ
    from vidgate.domain.request import ImageInput
    from vidgate.providers.base import ProviderContext, SubmitAttempt, UpstreamRejected
    from vidgate.providers.comfyui import ComfyUIAdapter

    async with pinned_client(_guard(), follow_redirects=True) as user_http, pinned_client(_guard()) as http:
        ctx = ProviderContext(
            http=http,
            api_key=None,
            base_url="http://cdn.allowed.test:9",  # never reached: the fetch fails first
            options={"workflow": json.dumps(I2V)},
            user_http=user_http,
        )
        adapter = ComfyUIAdapter(ctx)
        for target in _targets(private.port):
            redirector.location = target
            image = ImageInput(url=f"http://cdn.allowed.test:{redirector.port}/frame.png")
            with pytest.raises(UpstreamRejected) as caught:
                await adapter.submit(
                    REQ.model_copy(update={"images": (image,)}), LTX, SubmitAttempt.first("j")
                )
            assert caught.value.message == NOT_ALLOWED, target
            assert SECRET.decode() not in str(caught.value)
    assert private.connections == 0
