"""Operator actions that run outside a request: first run, keys, top-ups.

First run creates the ``demo`` account with a test-mode key and test credit. The
demo key's secret is also written to ``<data-dir>/demo-key.txt`` (mode 0600) so
that later starts can print it again; it can only spend test credit on the
simulator. Every other key is shown once and stored hashed only.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Literal

from vidgate.billing.accounts import IssuedKey, ensure_account, issue_key, revoke_key, top_up
from vidgate.config import Settings
from vidgate.errors import NotFound
from vidgate.money import format_usd, micros_from_usd
from vidgate.store import accounts as account_store
from vidgate.store import ledger as ledger_store
from vidgate.store.engine import Database, open_database
from vidgate.store.migrate import migrate

DEMO_ACCOUNT = "demo"


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    db = open_database(settings, null_pool=True)
    try:
        await migrate(db)
        yield db
    finally:
        await db.dispose()


async def first_run(settings: Settings) -> IssuedKey | None:
    """Make sure the demo account and key exist; return the key to print."""
    path = settings.data_dir / "demo-key.txt"
    async with _database(settings) as db, db.transaction() as conn:
        existing = await account_store.account_by_name(conn, DEMO_ACCOUNT)
        if existing is not None:
            if path.exists():
                return IssuedKey("", existing.id, existing.name, "test", path.read_text().strip())
            return None
        account = await ensure_account(conn, DEMO_ACCOUNT)
        issued = await issue_key(conn, account, mode="test", name="first-run demo key")
        await top_up(
            conn,
            account,
            micros=micros_from_usd(settings.demo_credit_usd),
            mode="test",
            memo="demo test credit",
        )
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
        await revoke_key(conn, key_id)


async def topup(settings: Settings, *, account: str, amount: Decimal, mode: Literal["live", "test"]) -> str:
    async with _database(settings) as db, db.transaction() as conn:
        row = await account_store.account_by_name(conn, account)
        if row is None:
            raise NotFound(f"no account named {account!r}")
        await top_up(conn, row, micros=micros_from_usd(amount), mode=mode)
        balance = await ledger_store.balance(conn, row.id, mode)
    return format_usd(balance.available_micros)


async def describe(settings: Settings, account: str) -> list[str]:
    async with _database(settings) as db, db.read() as conn:
        row = await account_store.account_by_name(conn, account)
        if row is None:
            raise NotFound(f"no account named {account!r}")
        lines = [f"account {row.name} ({row.id})"]
        for mode in ("live", "test"):
            balance = await ledger_store.balance(conn, row.id, mode)
            available, held = format_usd(balance.available_micros), format_usd(balance.held_micros)
            lines.append(f"  {mode}: balance ${available}, held ${held}")
        for key in await account_store.keys_of(conn, row.id):
            state = "revoked" if key.revoked_at else "active"
            lines.append(f"  key {key.id} {key.prefix}… {key.mode} {state}")
    return lines
