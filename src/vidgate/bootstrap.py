"""Operator actions that run outside a request: first run, keys, top-ups.

First run creates the ``demo`` account with a test-mode key and test credit. The
demo key is printed by that first start only; its secret is also kept in
``<data-dir>/demo-key.txt`` (mode 0600), which later starts point to without
printing it. It can only spend test credit on the simulator. Every other key is
shown once and stored hashed only.

Mistakes an operator can make here (an unknown account or key, a database that
cannot be reached) are ``OperatorError``: one line, no traceback.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from sqlalchemy.exc import IntegrityError

from vidgate.billing.accounts import IssuedKey, create_account, ensure_account, issue_key, revoke_key, top_up
from vidgate.config import Settings
from vidgate.errors import Conflict, GatewayError, NotFound
from vidgate.money import micros_from_usd, usd
from vidgate.startup import OperatorError, check_data_dir, check_database
from vidgate.store import accounts as account_store
from vidgate.store import ledger as ledger_store
from vidgate.store.engine import Database, open_database
from vidgate.store.migrate import migrate

DEMO_ACCOUNT = "demo"


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    check_data_dir(settings)
    await check_database(settings)
    db = open_database(settings, null_pool=True)
    try:
        await migrate(db)
        yield db
    except GatewayError as exc:  # an operator action refused (unknown account, bad amount...)
        raise OperatorError(exc.message) from exc
    finally:
        await db.dispose()


def demo_key_path(settings: Settings) -> Path:
    return settings.data_dir / "demo-key.txt"


async def first_run(settings: Settings) -> IssuedKey | None:
    """Make sure the demo account and key exist; return the key when it was made just now.

    Several processes may start at once on one database (API replicas): one makes the
    demo account, the others find it or lose the race on its unique name, and say nothing.
    The account is inserted, never got-or-created: a replica whose look-up missed an
    account committed a moment later must fail on the name, not issue a second key.
    """
    path = demo_key_path(settings)
    try:
        async with _database(settings) as db, db.transaction() as conn:
            try:
                account = await create_account(conn, DEMO_ACCOUNT)
            except Conflict:  # made earlier, or by a replica at the same moment
                return None
            issued = await issue_key(conn, account, mode="test", name="first-run demo key")
            await top_up(
                conn,
                account,
                micros=micros_from_usd(settings.demo_credit_usd),
                mode="test",
                memo="demo test credit",
            )
    except IntegrityError:  # the key or the credit collided with a replica's (belt and braces)
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(issued.secret + "\n")
    return issued


async def create_key(
    settings: Settings,
    *,
    account: str,
    mode: Literal["live", "test"],
    name: str = "",
    credit: Decimal | None = None,
    rate_limit: int | None = None,
    daily_cap: Decimal | None = None,
    total_cap: Decimal | None = None,
) -> IssuedKey:
    async with _database(settings) as db, db.transaction() as conn:
        row = await ensure_account(conn, account, rate_limit_per_minute=rate_limit)
        issued = await issue_key(
            conn,
            row,
            mode=mode,
            name=name,
            spend_cap_daily_micros=micros_from_usd(daily_cap) if daily_cap is not None else None,
            spend_cap_total_micros=micros_from_usd(total_cap) if total_cap is not None else None,
        )
        if credit:
            await top_up(
                conn,
                row,
                micros=micros_from_usd(credit),
                mode=mode,
                memo=f"credit with key {issued.id}",
            )
    return issued


async def revoke(settings: Settings, key_id: str) -> None:
    async with _database(settings) as db, db.transaction() as conn:
        try:
            await revoke_key(conn, key_id)
        except NotFound as exc:
            raise OperatorError(
                f"no key with id {key_id!r}; `vidgate accounts show ACCOUNT` lists an account's keys"
            ) from exc


async def topup(settings: Settings, *, account: str, amount: Decimal, mode: Literal["live", "test"]) -> str:
    async with _database(settings) as db, db.transaction() as conn:
        row = await account_store.account_by_name(conn, account)
        if row is None:
            raise _no_account(account)
        await top_up(conn, row, micros=micros_from_usd(amount), mode=mode)
        balance = await ledger_store.balance(conn, row.id, mode)
    return readable_usd(balance.available_micros)


async def describe(settings: Settings, account: str) -> list[str]:
    async with _database(settings) as db, db.read() as conn:
        row = await account_store.account_by_name(conn, account)
        if row is None:
            raise _no_account(account)
        lines = [f"account {row.name} ({row.id})"]
        for mode in ("live", "test"):
            balance = await ledger_store.balance(conn, row.id, mode)
            available, held = readable_usd(balance.available_micros), readable_usd(balance.held_micros)
            lines.append(f"  {mode}: balance {available}, held {held}")
        for key in await account_store.keys_of(conn, row.id):
            state = "revoked" if key.revoked_at else "active"
            lines.append(f"  key {key.id} {key.prefix}… {key.mode} {state}")
    return lines


def _no_account(name: str) -> OperatorError:
    return OperatorError(
        f"no account named {name!r}; `vidgate keys create --account {name}` creates it with a key"
    )


def readable_usd(micros: int) -> str:
    """Money as a person reads it: cents from a dollar up (``$24.33``), and below a dollar
    at most four decimals (``$0.0945``), never the six of a micro-USD."""
    amount = usd(micros)
    if abs(amount) >= 1 or amount == amount.quantize(Decimal("0.01")):
        return f"${amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,f}"
    shown = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    text = f"{shown:f}".rstrip("0")
    return "$" + (text if len(text.split(".")[1]) >= 2 else f"{shown:.2f}")
