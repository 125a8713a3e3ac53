"""Placing and settling holds: the only code that decides how money moves for a job.

Both functions run inside the transaction that creates or ends the job, so the
money and the state can never disagree. A hold checks, in this order: the key's
total cap, the key's daily cap, then the account balance; the first that cannot
cover the amount refuses the whole transaction with ``InsufficientFunds``.

Lock order. Every money transaction takes its row locks in this one order:

    jobs (the job's own row) -> api_keys -> key_spend_daily -> balances -> ledger_entries

Submitting inserts the job, then spends on the key, then holds on the balance;
settling updates the job's state, then gives the key its unspent room back, then
captures and releases on the balance. Two transactions for the same key therefore
queue on ``api_keys`` instead of each holding a lock the other wants (placing a hold
used to take ``api_keys`` then ``balances`` while settling took them the other way
round, which deadlocked on PostgreSQL with separate API and worker processes).
The transactions themselves run through ``Database.run``, which retries one that
PostgreSQL aborts anyway (serialization failure, or a deadlock with a lock taken
elsewhere) as a whole.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.domain.job import Job, Principal
from vidgate.errors import InsufficientFunds
from vidgate.money import format_usd
from vidgate.store import accounts as account_store
from vidgate.store import ledger as ledger_store


def spend_day(at: datetime) -> str:
    return at.date().isoformat()


async def place_hold(
    conn: AsyncConnection, principal: Principal, *, job_id: str, amount: int, at: datetime
) -> None:
    key = await account_store.key_by_id(conn, principal.key_id)
    if key is None:
        raise InsufficientFunds("the API key no longer exists", required_micros=amount)
    refused = await ledger_store.try_key_spend(
        conn,
        key_id=key.id,
        amount=amount,
        day=spend_day(at),
        cap_total=key.spend_cap_total_micros,
        cap_daily=key.spend_cap_daily_micros,
    )
    if refused == "total":
        cap = key.spend_cap_total_micros or 0
        raise InsufficientFunds(
            f"this API key's total spend cap of ${format_usd(cap)} would be exceeded "
            f"(already spent or held ${format_usd(key.spent_total_micros)}, "
            f"this job needs ${format_usd(amount)})",
            code="spend_cap_exceeded",
            required_micros=amount,
            available_micros=max(0, cap - key.spent_total_micros),
            cap="total",
        )
    if refused == "daily":
        raise InsufficientFunds(
            f"this API key's daily spend cap of ${format_usd(key.spend_cap_daily_micros or 0)} "
            f"would be exceeded by this job (${format_usd(amount)})",
            code="spend_cap_exceeded",
            required_micros=amount,
            cap="daily",
        )
    held = await ledger_store.try_hold(
        conn,
        account_id=principal.account_id,
        mode=principal.mode,
        amount=amount,
        job_id=job_id,
        key_id=principal.key_id,
        at=at,
    )
    if not held:
        balance = await ledger_store.balance(conn, principal.account_id, principal.mode)
        raise InsufficientFunds(
            f"insufficient balance: this job needs ${format_usd(amount)}, "
            f"the {principal.mode} balance is ${format_usd(balance.available_micros)}",
            required_micros=amount,
            available_micros=balance.available_micros,
        )


async def settle(conn: AsyncConnection, job: Job, *, capture: int, at: datetime) -> None:
    """Capture ``capture`` of the job's hold (0 on failure) and release the rest."""
    capture = max(0, min(capture, job.held_micros))
    # api_keys before balances: see the lock order in the module docstring.
    await ledger_store.unspend_key(
        conn, key_id=job.key_id, amount=job.held_micros - capture, day=spend_day(job.created_at)
    )
    await ledger_store.settle(
        conn,
        account_id=job.account_id,
        mode=job.mode,
        job_id=job.id,
        key_id=job.key_id,
        held=job.held_micros,
        capture=capture,
        at=at,
    )
