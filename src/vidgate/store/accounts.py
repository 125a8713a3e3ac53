"""Accounts and API keys in the database, their secrets kept as ``vidgate.keyring`` says.

In memory an API key is known by its SHA-256 digest (``KeyRow.secret_hash``, the
Apiframe webhook signing key); at rest ``api_keys.secret_hash`` holds the digest
keyed with the server secret (HMAC) and ``api_keys.signing_key`` the digest sealed.
An account's webhook secret is sealed too. A row from before migration 0004 that
could not be re-keyed then (``signing_key`` NULL) still holds the plain digest: it
is found by it once and re-keyed (``upgrade_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.keyring import Keyring
from vidgate.store.engine import keyring_of
from vidgate.store.tables import accounts, api_keys, balances


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    name: str
    webhook_secret: str
    rate_limit_per_minute: int | None
    retention_days: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    account_id: str
    name: str
    prefix: str
    secret_hash: str
    mode: str
    spend_cap_daily_micros: int | None
    spend_cap_total_micros: int | None
    spent_total_micros: int
    created_at: datetime
    revoked_at: datetime | None
    disabled: bool
    legacy: bool = False  # still stored as a plain digest: re-key it (upgrade_key)


def _account(conn: AsyncConnection, row: Any) -> AccountRow:
    values = {k: row._mapping[k] for k in AccountRow.__slots__}
    values["webhook_secret"] = keyring_of(conn).open(values["webhook_secret"])
    return AccountRow(**values)


def _key(conn: AsyncConnection, row: Any) -> KeyRow:
    values = {k: row._mapping[k] for k in KeyRow.__slots__ if k != "legacy"}
    sealed = row._mapping["signing_key"]
    if sealed is not None:
        values["secret_hash"] = keyring_of(conn).open(sealed)
    return KeyRow(**values, legacy=sealed is None)


def _stored_key(keyring: Keyring, digest: str) -> dict[str, str]:
    return {"secret_hash": keyring.key_hash(digest), "signing_key": keyring.seal(digest)}


async def insert_account(
    conn: AsyncConnection,
    *,
    id: str,
    name: str,
    webhook_secret: str,
    created_at: datetime,
    rate_limit_per_minute: int | None = None,
    retention_days: int | None = None,
) -> AccountRow:
    await conn.execute(
        accounts.insert().values(
            id=id,
            name=name,
            webhook_secret=keyring_of(conn).seal(webhook_secret),
            created_at=created_at,
            rate_limit_per_minute=rate_limit_per_minute,
            retention_days=retention_days,
        )
    )
    for mode in ("live", "test"):
        await conn.execute(balances.insert().values(account_id=id, mode=mode))
    return AccountRow(id, name, webhook_secret, rate_limit_per_minute, retention_days, created_at)


async def account_by_name(conn: AsyncConnection, name: str) -> AccountRow | None:
    row = (await conn.execute(select(accounts).where(accounts.c.name == name))).first()
    return _account(conn, row) if row else None


async def account_by_id(conn: AsyncConnection, account_id: str) -> AccountRow | None:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return _account(conn, row) if row else None


async def list_accounts(conn: AsyncConnection) -> list[AccountRow]:
    rows = await conn.execute(select(accounts).order_by(accounts.c.created_at, accounts.c.id))
    return [_account(conn, r) for r in rows]


async def update_account(conn: AsyncConnection, account_id: str, **values: Any) -> None:
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))


async def insert_key(
    conn: AsyncConnection,
    *,
    id: str,
    account_id: str,
    name: str,
    prefix: str,
    secret_hash: str,
    mode: str,
    created_at: datetime,
    spend_cap_daily_micros: int | None = None,
    spend_cap_total_micros: int | None = None,
) -> None:
    await conn.execute(
        api_keys.insert().values(
            id=id,
            account_id=account_id,
            name=name,
            prefix=prefix,
            mode=mode,
            created_at=created_at,
            spend_cap_daily_micros=spend_cap_daily_micros,
            spend_cap_total_micros=spend_cap_total_micros,
            **_stored_key(keyring_of(conn), secret_hash),
        )
    )


async def key_by_hash(conn: AsyncConnection, secret_hash: str) -> tuple[KeyRow, AccountRow] | None:
    """The key whose SHA-256 digest is ``secret_hash`` (hex), and its account."""
    keyed = keyring_of(conn).key_hash(secret_hash)
    legacy = and_(api_keys.c.secret_hash == secret_hash, api_keys.c.signing_key.is_(None))
    query = (
        select(api_keys, accounts.c.name.label("account_name"))
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .where(or_(api_keys.c.secret_hash == keyed, legacy))
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    key = _key(conn, row)
    account = await account_by_id(conn, key.account_id)
    assert account is not None  # foreign key
    return key, account


async def key_by_id(conn: AsyncConnection, key_id: str) -> KeyRow | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    return _key(conn, row) if row else None


async def keys_of(conn: AsyncConnection, account_id: str) -> list[KeyRow]:
    rows = await conn.execute(
        select(api_keys).where(api_keys.c.account_id == account_id).order_by(api_keys.c.created_at)
    )
    return [_key(conn, r) for r in rows]


async def update_key(conn: AsyncConnection, key_id: str, **values: Any) -> bool:
    result = await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
    return result.rowcount == 1


async def upgrade_key(conn: AsyncConnection, key_id: str, secret_hash: str) -> None:
    """Re-key a legacy row (plain digest) now that its digest is known from the caller."""
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.signing_key.is_(None))
        .values(**_stored_key(keyring_of(conn), secret_hash))
    )
