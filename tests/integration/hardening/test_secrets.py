"""Secrets kept close (issue 14): owner-only database files, no stored webhook secret or
key hash that is of any use without the server secret, existing databases migrated,
and an admin API that takes ``Authorization: Bearer <token>`` and nothing else."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from tests.conftest import Gateway, auth
from vidgate.api.auth import authenticate
from vidgate.api.webhooks import new_endpoint_secret
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.keyring import Keyring, SecretUnreadable, is_sealed
from vidgate.store import accounts as account_store
from vidgate.store import webhook_endpoints as endpoint_store
from vidgate.store.engine import Database, open_database
from vidgate.store.migrate import alembic_config, migrate

SERVER_SECRET = b"test-secret"  # the `settings` fixture's secret_key


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _raw_rows(db: Database, query: str) -> list[tuple[object, ...]]:
    async with db.read() as conn:
        return [tuple(row) for row in (await conn.execute(text(query))).all()]


async def test_database_files_are_owner_only_and_hold_nothing_usable(gateway: Gateway) -> None:
    key, principal = await gateway.account("secretive")
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    webhook_secret = account["webhook_secret"]
    assert webhook_secret.startswith("whsec_")
    endpoint_secret = new_endpoint_secret()
    db = gateway.services.db
    async with db.transaction() as conn:
        await endpoint_store.insert_endpoint(
            conn, id="we_sealed", account_id=principal.account_id, mode="test",
            url="https://hooks.example.com/x", events=["*"], secret=endpoint_secret,
            description="", created_at=utcnow(),
        )  # fmt: skip
        assert await endpoint_store.endpoint_secret(conn, "we_sealed") == endpoint_secret
    digest = hashlib.sha256(key.encode()).hexdigest()  # the Apiframe signing key

    [(stored_hash, signing_key)] = await _raw_rows(db, "SELECT secret_hash, signing_key FROM api_keys")
    [(stored_webhook,)] = await _raw_rows(db, "SELECT webhook_secret FROM accounts")
    [(stored_endpoint,)] = await _raw_rows(db, "SELECT secret FROM webhook_endpoints")
    assert stored_hash != digest and stored_hash == Keyring(SERVER_SECRET).key_hash(digest)
    assert stored_hash != Keyring(b"another server").key_hash(digest)
    for sealed, plain in (
        (signing_key, digest),
        (stored_webhook, webhook_secret),
        (stored_endpoint, endpoint_secret),
    ):
        assert isinstance(sealed, str) and is_sealed(sealed) and plain not in sealed
        assert Keyring(SERVER_SECRET).open(sealed) == plain
        with pytest.raises(SecretUnreadable):
            Keyring(b"another server").open(sealed)

    settings = gateway.services.settings
    assert _mode(settings.data_dir) == 0o700
    assert (
        _mode(settings.data_dir / "secret.key") == 0o600
        if (settings.data_dir / "secret.key").exists()
        else True
    )
    if settings.is_sqlite:
        files = [
            Path(settings.resolved_database_url.split("///", 1)[1] + tail) for tail in ("", "-wal", "-shm")
        ]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        raw = b"".join(f.read_bytes() for f in files)
        for plain in (digest, webhook_secret, endpoint_secret, key):
            assert plain.encode() not in raw
        assert bytes.fromhex(digest) not in raw


async def test_existing_database_files_are_tightened(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("file modes are a SQLite matter")
    settings.data_dir.mkdir(mode=0o755, parents=True)
    path = settings.data_dir / "vidgate.db"
    db = Database(f"sqlite+aiosqlite:///{path}")  # an old install, made 0644 by hand below
    await migrate(db)
    await db.dispose()
    settings.data_dir.chmod(0o755)
    for f in settings.data_dir.iterdir():
        f.chmod(0o644)
    reopened = open_database(settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{path}"}))
    await reopened.dispose()
    assert _mode(settings.data_dir) == 0o700
    assert {f.name: _mode(f) for f in settings.data_dir.iterdir() if f.name.startswith("vidgate.db")} == {
        f.name: 0o600 for f in settings.data_dir.iterdir() if f.name.startswith("vidgate.db")
    }


def _upgrade_to(revision: str) -> object:
    """Exactly ``revision``: up from nothing (SQLite), or down from a migrated template (PostgreSQL)."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)
        command.downgrade(alembic_config(connection), revision)

    return run


async def _legacy_database(db: Database, key: str) -> None:
    """A database as 0003 left it: plain SHA-256 key hashes, webhook secrets in the clear."""
    async with db.transaction() as conn:
        await conn.run_sync(_upgrade_to("0003"))  # type: ignore[arg-type]
        now = datetime(2026, 1, 1, tzinfo=UTC)
        await conn.execute(
            text(
                "INSERT INTO accounts (id, name, webhook_secret, created_at) VALUES ('acct_old', 'old', :s, :t)"
            ),
            {"s": "whsec_b2xkLWFjY291bnQtc2VjcmV0", "t": now},
        )
        for mode in ("live", "test"):
            await conn.execute(
                text("INSERT INTO balances (account_id, mode) VALUES ('acct_old', :m)"), {"m": mode}
            )
        await conn.execute(
            text(
                "INSERT INTO api_keys (id, account_id, name, prefix, secret_hash, mode, created_at) "
                "VALUES ('key_old', 'acct_old', '', 'vg_test_old', :h, 'test', :t)"
            ),
            {"h": hashlib.sha256(key.encode()).hexdigest(), "t": now},
        )
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, account_id, mode, url, events, secret, description, created_at)"
                " VALUES ('we_old', 'acct_old', 'test', 'https://h.example.com', '[\"*\"]', :s, '', :t)"
            ),
            {"s": "whsec_b2xkLWVuZHBvaW50LXNlY3JldA==", "t": now},
        )


LEGACY_KEY = "vg_test_" + "o" * 43


async def test_migration_0004_rekeys_and_seals_an_existing_database(database_url: str) -> None:
    keyring = Keyring(SERVER_SECRET)
    db = Database(database_url, keyring=keyring)
    try:
        await _legacy_database(db, LEGACY_KEY)
        await migrate(db)
        digest = hashlib.sha256(LEGACY_KEY.encode()).hexdigest()
        [(stored, signing)] = await _raw_rows(db, "SELECT secret_hash, signing_key FROM api_keys")
        assert stored == keyring.key_hash(digest) and keyring.open(str(signing)) == digest
        [(webhook,)] = await _raw_rows(db, "SELECT webhook_secret FROM accounts")
        [(endpoint,)] = await _raw_rows(db, "SELECT secret FROM webhook_endpoints")
        assert is_sealed(str(webhook)) and is_sealed(str(endpoint))
        principal = await authenticate(db, LEGACY_KEY)
        assert principal.key_id == "key_old" and principal.secret_hash == digest
        async with db.read() as conn:
            assert (
                await endpoint_store.account_webhook_secret(conn, "acct_old")
                == "whsec_b2xkLWFjY291bnQtc2VjcmV0"
            )
            assert (
                await endpoint_store.endpoint_secret(conn, "we_old") == "whsec_b2xkLWVuZHBvaW50LXNlY3JldA=="
            )
    finally:
        await db.dispose()


async def test_a_legacy_key_migrated_without_the_secret_is_rekeyed_on_first_use(database_url: str) -> None:
    bare = Database(database_url)  # no keyring: 0004 can only change the schema
    await _legacy_database(bare, LEGACY_KEY)
    await migrate(bare)
    await bare.dispose()
    keyring = Keyring(SERVER_SECRET)
    db = Database(database_url, keyring=keyring)
    try:
        digest = hashlib.sha256(LEGACY_KEY.encode()).hexdigest()
        assert await _raw_rows(db, "SELECT secret_hash, signing_key FROM api_keys") == [(digest, None)]
        with pytest.raises(Exception, match="invalid API key"):
            await authenticate(db, "vg_test_" + "x" * 43)
        principal = await authenticate(db, LEGACY_KEY)
        assert principal.key_id == "key_old" and principal.secret_hash == digest
        [(stored, signing)] = await _raw_rows(db, "SELECT secret_hash, signing_key FROM api_keys")
        assert stored == keyring.key_hash(digest) and keyring.open(str(signing)) == digest
        assert (await authenticate(db, LEGACY_KEY)).key_id == "key_old"  # and found the new way
        async with db.read() as conn:
            found = await account_store.key_by_hash(conn, digest)
        assert found is not None and not found[0].legacy
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer adm1n-token", 200),
        ("bearer adm1n-token", 200),
        ("BEARER   adm1n-token", 200),
        ("adm1n-token", 401),
        ("Basic adm1n-token", 401),
        ("Token adm1n-token", 401),
        ("Bearer", 401),
        ("Bearer adm1n-token-and-more", 401),
        ("", 401),
    ],
)
async def test_the_admin_api_takes_a_bearer_token_only(gateway: Gateway, header: str, status: int) -> None:
    gateway.services.settings.admin_token = "adm1n-token"
    headers = {"Authorization": header} if header else {}
    assert (await gateway.client.get("/admin/accounts", headers=headers)).status_code == status
    assert (await gateway.client.get("/admin/accounts", params={"token": "adm1n-token"})).status_code == 401
