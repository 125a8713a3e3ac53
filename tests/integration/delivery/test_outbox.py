"""The outbox under several senders, and the cursor's watermark (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from standardwebhooks import Webhook

from tests.conftest import Gateway, auth
from tests.integration.delivery.conftest import FAST, Receiver, fix_webhook_secret
from vidgate.api.webhooks import new_endpoint_secret
from vidgate.billing.accounts import ensure_account
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.keyring import Keyring
from vidgate.media.links import MediaLinks
from vidgate.net.urlguard import UrlGuard, pinned_client
from vidgate.store import delivery as store
from vidgate.store import webhook_endpoints as endpoint_store
from vidgate.store.engine import Database
from vidgate.store.events import append_event
from vidgate.store.migrate import migrate
from vidgate.webhooks.config import DeliveryConfig
from vidgate.webhooks.sender import OutboxSender


async def test_several_senders_deliver_each_event_once_per_destination(
    gateway: Gateway, receiver: Receiver
) -> None:
    key, principal = await gateway.account()
    secret = await fix_webhook_secret(gateway, principal)
    endpoint = (
        await gateway.client.post(
            "/v1/webhook_endpoints", json={"url": receiver.url + "/ep"}, headers=auth(key)
        )
    ).json()
    config = DeliveryConfig.from_settings(Settings(extra=FAST))
    guard = UrlGuard("127.0.0.1")
    senders = [
        OutboxSender(
            gateway.services.db,
            config,
            guard=guard,
            links=lambda: MediaLinks("http://testserver", gateway.services.signing_secret, 3600),
            hooks=gateway.runtime.sender.hooks,
        )
        for _ in range(3)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]  # plus the app's own sender
    try:
        ids = []
        for n in range(4):
            body = {
                "model": "sora-2",
                "prompt": f"clip {n}",
                "seconds": "4",
                "webhook_url": receiver.url + "/job",
            }
            ids.append((await gateway.client.post("/v1/videos", json=body, headers=auth(key))).json()["id"])
        for video_id in ids:
            await gateway.wait_terminal(f"/v1/videos/{video_id}", key)
        await receiver.wait_for(lambda r: len(list(r.of_type("video.completed"))) == 8)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    per_destination: dict[tuple[str, str], int] = {}
    for request in receiver.delivered():
        signer = Webhook(secret if request.path == "/hook/job" else endpoint["secret"])
        signer.verify(request.body, request.headers)
        slot = (request.path, request.headers["webhook-id"])
        per_destination[slot] = per_destination.get(slot, 0) + 1
    assert per_destination and set(per_destination.values()) == {1}
    assert {path for path, _ in per_destination} == {"/hook/job", "/hook/ep"}


async def test_watermark_stops_at_unseen_events_and_at_the_grace_horizon(gateway: Gateway) -> None:
    db = gateway.services.db
    now = utcnow()
    _, principal = await gateway.account()
    async with db.transaction() as conn:
        start = await store.lock_cursor(conn, "test-cursor")
        ids = []
        for n in range(4):
            await append_event(
                conn,
                account_id=principal.account_id,
                job_id=None,
                type="video.test",
                payload={"n": n},
                at=now - timedelta(seconds=100 - n),
            )
        fresh = await store.unseen_events(conn, after=start, limit=100)
        ids = [e.id for e in fresh if e.type == "video.test"]
        assert len(ids) == 4
    async with db.transaction() as conn:
        await store.lock_cursor(conn, "test-cursor")
        await store.mark_seen(conn, [e.id for e in fresh if e.id < ids[2]])  # ids[2] and on: unseen
        mark = await store.advance_cursor(conn, "test-cursor", current=start, horizon=now)
    assert mark == ids[2] - 1
    async with db.transaction() as conn:
        await store.lock_cursor(conn, "test-cursor")
        await store.mark_seen(conn, [ids[2], ids[3]])
        # Seen, but younger than the horizon: a slower transaction could still commit below them.
        held = await store.advance_cursor(
            conn, "test-cursor", current=mark, horizon=now - timedelta(seconds=99)
        )
        assert held == ids[1]  # only ids[0..1] are older than 99 s, and those were already passed
        final = await store.advance_cursor(conn, "test-cursor", current=held, horizon=now)
        assert final == ids[3]
        assert await store.unseen_events(conn, after=final, limit=100) == []
        assert await store.lock_cursor(conn, "test-cursor") == final


async def test_sender_rechecks_the_address_at_send_time(tmp_path: Path, receiver: Receiver) -> None:
    """Checked when the URL was given, checked again when sent: a name that now resolves
    inside (DNS rebinding) is never connected to, even though something listens there."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    answers = {"rebind.example.test": ["127.0.0.1"]}

    async def resolver(host: str, _port: int) -> list[str]:
        return answers[host]

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}", keyring=Keyring(b"test-secret"))
    await migrate(db)
    try:
        settings = Settings(data_dir=tmp_path, extra=FAST)
        guard = UrlGuard("", resolver=resolver)
        sender = OutboxSender(
            db,
            DeliveryConfig.from_settings(settings),
            guard=guard,
            links=lambda: MediaLinks("http://x", b"s", 3600),
        )
        async with db.transaction() as conn:
            account = await ensure_account(conn, "rebinding")
            await endpoint_store.insert_endpoint(
                conn,
                id="we_rebind",
                account_id=account.id,
                mode="test",
                url=f"http://rebind.example.test:{port}/hook",
                events=["*"],
                secret=new_endpoint_secret(),
                description="",
                created_at=utcnow(),
            )
            await append_event(
                conn, account_id=account.id, job_id=None, type="video.completed", payload={}, at=utcnow()
            )
        assert await sender.fan_out_once() == 1
        async with pinned_client(guard) as http:
            assert await sender.deliver_once(http) == 1
        async with db.read() as conn:
            [delivery] = await store.list_deliveries(conn, account.id, "test", limit=10)
            attempts = (await store.attempts_of(conn, [delivery.id]))[delivery.id]
        assert delivery.status == "pending" and delivery.attempts == 1
        assert attempts[0].status_code is None
        assert "BlockedAddress" in (attempts[0].error or "")
        assert "loopback" in (attempts[0].error or "")
        assert receiver.requests == []
    finally:
        await db.dispose()
