"""The ledger's SQL: append-only entries plus the running balance they add up to.

Every function here runs inside the caller's transaction, next to the state change
it pays for. A hold is one conditional UPDATE (``available >= amount``), so two
concurrent holds can never both spend the same money, on SQLite or PostgreSQL.
``billing/`` decides amounts; this module only writes what it is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.tables import api_keys, balances, key_spend_daily, ledger_entries


@dataclass(frozen=True, slots=True)
class Balance:
    available_micros: int
    held_micros: int


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    account_id: str
    mode: str
    kind: str
    amount_micros: int
    held_delta_micros: int
    job_id: str | None
    key_id: str | None
    memo: str
    created_at: datetime


def _entry(row: Any) -> Entry:
    return Entry(**{k: row._mapping[k] for k in Entry.__slots__})


async def _append(
    conn: AsyncConnection,
    *,
    account_id: str,
    mode: str,
    kind: str,
    amount: int,
    held: int,
    job_id: str | None,
    key_id: str | None,
    memo: str,
    at: datetime,
) -> None:
    # balances before ledger_entries: the lock order of vidgate.billing.holds.
    await conn.execute(
        update(balances)
        .where(balances.c.account_id == account_id, balances.c.mode == mode)
        .values(
            available_micros=balances.c.available_micros + amount,
            held_micros=balances.c.held_micros + held,
        )
    )
    await conn.execute(
        ledger_entries.insert().values(
            account_id=account_id,
            mode=mode,
            kind=kind,
            amount_micros=amount,
            held_delta_micros=held,
            job_id=job_id,
            key_id=key_id,
            memo=memo,
            created_at=at,
        )
    )


async def credit(
    conn: AsyncConnection,
    *,
    account_id: str,
    mode: str,
    amount: int,
    kind: str,
    memo: str,
    at: datetime,
    key_id: str | None = None,
    job_id: str | None = None,
) -> None:
    """A top-up (positive) or an adjustment (either sign; never below zero). An adjustment
    with ``job_id`` is a refund (or correction) of that job: the margin report counts it."""
    await _append(
        conn,
        account_id=account_id,
        mode=mode,
        kind=kind,
        amount=amount,
        held=0,
        job_id=job_id,
        key_id=key_id,
        memo=memo,
        at=at,
    )


async def try_hold(
    conn: AsyncConnection,
    *,
    account_id: str,
    mode: str,
    amount: int,
    job_id: str,
    key_id: str,
    at: datetime,
) -> bool:
    """Move ``amount`` from available to held, or change nothing and return False."""
    result = await conn.execute(
        update(balances)
        .where(
            balances.c.account_id == account_id,
            balances.c.mode == mode,
            balances.c.available_micros >= amount,
        )
        .values(
            available_micros=balances.c.available_micros - amount,
            held_micros=balances.c.held_micros + amount,
        )
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        ledger_entries.insert().values(
            account_id=account_id,
            mode=mode,
            kind="hold",
            amount_micros=-amount,
            held_delta_micros=amount,
            job_id=job_id,
            key_id=key_id,
            memo=f"hold for {job_id}",
            created_at=at,
        )
    )
    return True


async def try_key_spend(
    conn: AsyncConnection,
    *,
    key_id: str,
    amount: int,
    day: str,
    cap_total: int | None,
    cap_daily: int | None,
) -> str | None:
    """Count ``amount`` against a key's caps; returns the cap that refused it, or None."""
    total = update(api_keys).where(api_keys.c.id == key_id)
    if cap_total is not None:
        total = total.where(api_keys.c.spent_total_micros + amount <= cap_total)
    result = await conn.execute(total.values(spent_total_micros=api_keys.c.spent_total_micros + amount))
    if result.rowcount != 1:
        return "total"
    if cap_daily is None:
        return None
    exists = await conn.execute(
        select(literal(1)).where(key_spend_daily.c.key_id == key_id, key_spend_daily.c.day == day)
    )
    if exists.first() is None:
        await conn.execute(insert(key_spend_daily).values(key_id=key_id, day=day, spent_micros=0))
    daily = await conn.execute(
        update(key_spend_daily)
        .where(
            key_spend_daily.c.key_id == key_id,
            key_spend_daily.c.day == day,
            key_spend_daily.c.spent_micros + amount <= cap_daily,
        )
        .values(spent_micros=key_spend_daily.c.spent_micros + amount)
    )
    return None if daily.rowcount == 1 else "daily"


async def unspend_key(conn: AsyncConnection, *, key_id: str, amount: int, day: str) -> None:
    """Give back key spend when a hold is released (the money was never spent)."""
    if amount <= 0:
        return
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(spent_total_micros=api_keys.c.spent_total_micros - amount)
    )
    await conn.execute(
        update(key_spend_daily)
        .where(key_spend_daily.c.key_id == key_id, key_spend_daily.c.day == day)
        .values(
            spent_micros=func.max(key_spend_daily.c.spent_micros - amount, 0)
            if conn.dialect.name == "sqlite"
            else func.greatest(key_spend_daily.c.spent_micros - amount, 0)
        )
    )


async def settle(
    conn: AsyncConnection,
    *,
    account_id: str,
    mode: str,
    job_id: str,
    key_id: str,
    held: int,
    capture: int,
    at: datetime,
) -> None:
    """End a hold: capture ``capture`` (0 for none) and release the rest, as entries."""
    if capture:
        await _append(
            conn,
            account_id=account_id,
            mode=mode,
            kind="capture",
            amount=0,
            held=-capture,
            job_id=job_id,
            key_id=key_id,
            memo=f"charge for {job_id}",
            at=at,
        )
    if held - capture:
        await _append(
            conn,
            account_id=account_id,
            mode=mode,
            kind="release",
            amount=held - capture,
            held=-(held - capture),
            job_id=job_id,
            key_id=key_id,
            memo=f"release for {job_id}",
            at=at,
        )


async def balance(conn: AsyncConnection, account_id: str, mode: str) -> Balance:
    row = (
        await conn.execute(
            select(balances.c.available_micros, balances.c.held_micros).where(
                balances.c.account_id == account_id, balances.c.mode == mode
            )
        )
    ).first()
    return Balance(int(row[0]), int(row[1])) if row else Balance(0, 0)


async def entry_sums(conn: AsyncConnection, account_id: str, mode: str) -> Balance:
    """The balance recomputed from the entries alone (the invariant's other side)."""
    row = (
        await conn.execute(
            select(
                func.coalesce(func.sum(ledger_entries.c.amount_micros), 0),
                func.coalesce(func.sum(ledger_entries.c.held_delta_micros), 0),
            ).where(ledger_entries.c.account_id == account_id, ledger_entries.c.mode == mode)
        )
    ).one()
    return Balance(int(row[0]), int(row[1]))


async def entries(
    conn: AsyncConnection,
    account_id: str,
    mode: str,
    *,
    limit: int,
    before_id: int | None = None,
    job_id: str | None = None,
) -> list[Entry]:
    query = select(ledger_entries).where(
        ledger_entries.c.account_id == account_id, ledger_entries.c.mode == mode
    )
    if before_id is not None:
        query = query.where(ledger_entries.c.id < before_id)
    if job_id is not None:
        query = query.where(ledger_entries.c.job_id == job_id)
    rows = await conn.execute(query.order_by(ledger_entries.c.id.desc()).limit(limit))
    return [_entry(r) for r in rows]


async def job_entries(conn: AsyncConnection, job_id: str) -> list[Entry]:
    rows = await conn.execute(
        select(ledger_entries).where(ledger_entries.c.job_id == job_id).order_by(ledger_entries.c.id)
    )
    return [_entry(r) for r in rows]
