"""The pinned client over a real socket: a name resolved by the guard, the Host header kept."""

from __future__ import annotations

from tests.integration.delivery.conftest import Receiver
from vidgate.net.urlguard import UrlGuard, pinned_client


async def test_a_name_is_connected_to_at_its_checked_address(receiver: Receiver) -> None:
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])

    async def resolver(host: str, _port: int) -> list[str]:
        assert host == "hooks.internal.test"
        return ["127.0.0.1"]

    guard = UrlGuard("hooks.internal.test", resolver=resolver)  # an allowlisted private name
    async with pinned_client(guard) as client:
        response = await client.post(f"http://hooks.internal.test:{port}/hook", content=b'{"a":1}')
    assert response.status_code == 200
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.internal.test:{port}"
    assert request.body == b'{"a":1}'
