"""Refunding a job: an adjustment linked to it, never more than it was charged.

A refund runs in the caller's transaction (``Database.run``), which first locks the
job's row (the head of the lock order in ``billing.holds``): two refunds of one job
queue on that lock, so together they can never pass what was captured. The key's
spend is left as it was: a refund gives the account money back, it does not reopen
a spend cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.errors import Conflict, InvalidRequest, NotFound
from vidgate.money import format_usd
from vidgate.store import job_search
from vidgate.store import ledger as ledger_store


@dataclass(frozen=True, slots=True)
class Refunded:
    job_id: str
    amount_micros: int
    refunded_micros: int  # all refunds of the job so far, this one included
    refundable_micros: int  # what is left to refund


async def refund_job(
    conn: AsyncConnection, job_id: str, *, amount: int, reason: str, at: datetime
) -> Refunded:
    if amount <= 0:
        raise InvalidRequest("a refund must be more than $0", param="amount")
    job = await job_search.lock_job(conn, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}", param="id")
    captured = job.charged_micros or 0
    earlier = await job_search.adjusted_micros(conn, job_id)
    room = captured - earlier
    if captured == 0:
        raise Conflict(
            f"job {job_id!r} was not charged, so there is nothing to refund", code="nothing_to_refund"
        )
    if amount > room:
        raise InvalidRequest(
            f"a refund of ${format_usd(amount)} is more than is left to refund on this job: "
            f"${format_usd(room)} (charged ${format_usd(captured)}, refunded ${format_usd(earlier)})",
            param="amount",
            code="refund_too_large",
        )
    await ledger_store.credit(
        conn,
        account_id=job.account_id,
        mode=job.mode,
        amount=amount,
        kind="adjustment",
        job_id=job.id,
        key_id=job.key_id,
        memo=reason,
        at=at,
    )
    return Refunded(job.id, amount, earlier + amount, room - amount)
