"""Creating accounts and keys, and topping up: shared by the CLI, the admin API and first run."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.billing.keys import display_prefix, generate_key, hash_key
from vidgate.clock import utcnow
from vidgate.errors import Conflict, InvalidRequest, NotFound
from vidgate.ids import new_id
from vidgate.store import accounts as account_store
from vidgate.store import ledger as ledger_store
from vidgate.store.accounts import AccountRow


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    account_id: str
    account_name: str
    mode: Literal["live", "test"]
    secret: str  # shown once, never stored


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + standard base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def ensure_account(
    conn: AsyncConnection, name: str, *, rate_limit_per_minute: int | None = None
) -> AccountRow:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("an account name is 1 to 200 characters", param="name")
    found = await account_store.account_by_name(conn, name)
    if found is not None:
        if rate_limit_per_minute is not None:
            await account_store.update_account(conn, found.id, rate_limit_per_minute=rate_limit_per_minute)
        return found
    return await _insert(conn, name, rate_limit_per_minute)


async def create_account(
    conn: AsyncConnection, name: str, *, rate_limit_per_minute: int | None = None
) -> AccountRow:
    """A NEW account named ``name``: ``Conflict`` when one exists, also when another
    transaction creates it at the same moment (the unique name makes the insert fail,
    inside a savepoint so the caller's transaction lives on), never the other's account.

    (``ensure_account`` is get-or-create: on PostgreSQL each statement sees what was
    committed just before it, so a look-up, then a get-or-create, can find an account
    that the first look-up did not, and the caller would go on as if it had made it.)
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidRequest("an account name is 1 to 200 characters", param="name")
    taken = Conflict(f"an account named {name!r} already exists", param="name")
    if await account_store.account_by_name(conn, name) is not None:
        raise taken
    try:
        async with conn.begin_nested():
            return await _insert(conn, name, rate_limit_per_minute)
    except IntegrityError as exc:
        raise taken from exc


async def _insert(conn: AsyncConnection, name: str, rate_limit_per_minute: int | None) -> AccountRow:
    return await account_store.insert_account(
        conn,
        id=new_id("acct"),
        name=name,
        webhook_secret=new_webhook_secret(),
        created_at=utcnow(),
        rate_limit_per_minute=rate_limit_per_minute,
    )


async def issue_key(
    conn: AsyncConnection,
    account: AccountRow,
    *,
    mode: Literal["live", "test"],
    name: str = "",
    spend_cap_daily_micros: int | None = None,
    spend_cap_total_micros: int | None = None,
) -> IssuedKey:
    secret = generate_key(mode)
    key_id = new_id("key")
    await account_store.insert_key(
        conn,
        id=key_id,
        account_id=account.id,
        name=name,
        prefix=display_prefix(secret),
        secret_hash=hash_key(secret),
        mode=mode,
        created_at=utcnow(),
        spend_cap_daily_micros=spend_cap_daily_micros,
        spend_cap_total_micros=spend_cap_total_micros,
    )
    return IssuedKey(key_id, account.id, account.name, mode, secret)


async def revoke_key(conn: AsyncConnection, key_id: str) -> None:
    if not await account_store.update_key(conn, key_id, revoked_at=utcnow()):
        raise NotFound(f"no key with id {key_id!r}")


async def top_up(
    conn: AsyncConnection,
    account: AccountRow,
    *,
    micros: int,
    mode: Literal["live", "test"],
    memo: str = "top-up",
) -> None:
    if micros <= 0:
        raise InvalidRequest("a top-up amount must be positive", param="amount")
    await ledger_store.credit(
        conn, account_id=account.id, mode=mode, amount=micros, kind="topup", memo=memo, at=utcnow()
    )
