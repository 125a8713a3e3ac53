"""AccountService: what an API may read about the caller's account, without touching the store.

Dialects and the native API only translate; the balance, a page of the ledger,
today's spend, the account's limits and a job's latest webhook delivery are read
here. Nothing here moves money (that is ``vidgate.billing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from vidgate.clock import utcnow
from vidgate.domain.job import Job, Principal
from vidgate.store import accounts as account_store
from vidgate.store import delivery as delivery_store
from vidgate.store import ledger as ledger_store
from vidgate.store.engine import Database
from vidgate.store.ledger import Balance, Entry

__all__ = ["AccountService", "AccountView", "Balance", "LedgerEntry", "LedgerPage"]

LedgerEntry = Entry
SPEND_PAGE = 200  # ledger entries read per query when adding up a day's spend


@dataclass(frozen=True, slots=True)
class LedgerPage:
    entries: list[LedgerEntry]
    has_more: bool
    next_before: int | None


@dataclass(frozen=True, slots=True)
class AccountView:
    """The caller's account, key and balance, as the native ``/v1/account`` shows them."""

    account_id: str
    name: str
    webhook_secret: str
    rate_limit_per_minute: int | None
    key_id: str
    key_prefix: str
    key_mode: str
    spend_cap_daily_micros: int | None
    spend_cap_total_micros: int | None
    spent_total_micros: int
    balance: Balance


class AccountService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def balance(self, principal: Principal) -> Balance:
        async with self.db.read() as conn:
            return await ledger_store.balance(conn, principal.account_id, principal.mode)

    async def view(self, principal: Principal) -> AccountView:
        async with self.db.read() as conn:
            balance = await ledger_store.balance(conn, principal.account_id, principal.mode)
            account = await account_store.account_by_id(conn, principal.account_id)
            key = await account_store.key_by_id(conn, principal.key_id)
        if account is None or key is None:  # deleted between authentication and now
            raise LookupError("the account or key no longer exists")
        return AccountView(
            account_id=account.id,
            name=account.name,
            webhook_secret=account.webhook_secret,
            rate_limit_per_minute=account.rate_limit_per_minute,
            key_id=key.id,
            key_prefix=key.prefix,
            key_mode=key.mode,
            spend_cap_daily_micros=key.spend_cap_daily_micros,
            spend_cap_total_micros=key.spend_cap_total_micros,
            spent_total_micros=key.spent_total_micros,
            balance=balance,
        )

    async def ledger_page(
        self, principal: Principal, *, limit: int, before: int | None = None, job_id: str | None = None
    ) -> LedgerPage:
        """Entries newest first, ``limit`` of them, starting below entry id ``before``."""
        async with self.db.read() as conn:
            entries = await ledger_store.entries(
                conn,
                principal.account_id,
                principal.mode,
                limit=limit + 1,
                before_id=before,
                job_id=job_id,
            )
        page = entries[:limit]
        more = len(entries) > limit
        return LedgerPage(page, more, page[-1].id if more and page else None)

    async def spend_since(self, principal: Principal, since: datetime) -> int:
        """Micro-USD captured (charged) on the caller's account and mode since ``since``."""
        total, before = 0, None
        async with self.db.read() as conn:
            while True:
                page = await ledger_store.entries(
                    conn, principal.account_id, principal.mode, limit=SPEND_PAGE, before_id=before
                )
                for entry in page:
                    created = entry.created_at
                    if created.tzinfo is None:
                        created = created.replace(tzinfo=UTC)
                    if created < since:
                        return total
                    if entry.kind == "capture":
                        total -= entry.held_delta_micros
                if len(page) < SPEND_PAGE:
                    return total
                before = page[-1].id

    async def spend_today(self, principal: Principal) -> int:
        """Micro-USD captured since 00:00 UTC today."""
        midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        return await self.spend_since(principal, midnight)

    async def webhook_outcome(self, job: Job) -> str | None:
        """The status of the job's latest delivery to its own ``webhook_url``.

        None when the job has no webhook URL, ``"pending"`` before any delivery exists,
        else the delivery's status (``pending``, ``succeeded``, ``failed``, ...).
        """
        if not job.webhook_url:
            return None
        async with self.db.read() as conn:
            found = await delivery_store.list_deliveries(
                conn, job.account_id, job.mode, limit=20, job_id=job.id
            )
        own = [d for d in found if d.destination == "job"]
        return own[0].status if own else "pending"
