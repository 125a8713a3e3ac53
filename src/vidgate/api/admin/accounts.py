"""Admin: accounts, keys, top-ups, limits and spend caps, and any account's ledger and jobs.

``PATCH`` bodies change only the fields they name; ``null`` puts a limit back to the
server's default (rate limit, retention) or removes a spend cap. Limits apply from
the next request, since every request reads its key and account afresh.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from vidgate.api.admin.access import Admin
from vidgate.api.admin.job_view import job_summary
from vidgate.api.context import Services
from vidgate.api.native import ledger_entry
from vidgate.billing.accounts import create_account, issue_key, revoke_key, top_up
from vidgate.errors import Conflict, InvalidRequest, NotFound
from vidgate.money import format_usd, micros_from_usd
from vidgate.store import accounts as account_store
from vidgate.store import job_search
from vidgate.store import jobs as job_store
from vidgate.store import ledger as ledger_store
from vidgate.store.accounts import AccountRow, KeyRow

router = APIRouter(prefix="/admin", tags=["admin"])


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    rate_limit_per_minute: int | None = Field(None, ge=0)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["live", "test"] = "live"
    name: str = Field("", max_length=200)
    spend_cap_daily: Decimal | None = Field(None, ge=0)
    spend_cap_total: Decimal | None = Field(None, ge=0)


class AccountChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    rate_limit_per_minute: int | None = Field(None, ge=0, le=1_000_000)
    retention_days: int | None = Field(None, ge=1, le=3650)


class KeyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    spend_cap_daily: Decimal | None = Field(None, ge=0, le=Decimal("1000000"))
    spend_cap_total: Decimal | None = Field(None, ge=0, le=Decimal("1000000"))


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal = Field(gt=0, le=Decimal("1000000"))
    mode: Literal["live", "test"] = "live"
    memo: str = Field("top-up", max_length=500)


def _account_json(row: AccountRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "rate_limit_per_minute": row.rate_limit_per_minute,
        "retention_days": row.retention_days,
        "created_at": row.created_at.isoformat(),
    }


def _key_json(row: KeyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "name": row.name,
        "prefix": row.prefix,
        "mode": row.mode,
        "spend_cap_daily": format_usd(row.spend_cap_daily_micros)
        if row.spend_cap_daily_micros is not None
        else None,
        "spend_cap_total": format_usd(row.spend_cap_total_micros)
        if row.spend_cap_total_micros is not None
        else None,
        "spent_total": format_usd(row.spent_total_micros),
        "created_at": row.created_at.isoformat(),
        "revoked": row.revoked_at is not None,
    }


async def _account(svc: Services, account_id: str) -> AccountRow:
    async with svc.db.read() as conn:
        row = await account_store.account_by_id(conn, account_id)
    if row is None:
        raise NotFound(f"no account {account_id!r}", param="account_id")
    return row


@router.post("/accounts", status_code=201)
async def new_account(body: NewAccount, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    async with svc.db.transaction() as conn:
        row = await create_account(conn, body.name, rate_limit_per_minute=body.rate_limit_per_minute)
        details = {"name": body.name, "rate_limit_per_minute": body.rate_limit_per_minute}
        await caller.audit(conn, "account.create", row.id, details)
    return _account_json(row)


@router.get("/accounts")
async def all_accounts(caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    async with svc.db.read() as conn:
        rows = await account_store.list_accounts(conn)
    return {"object": "list", "data": [_account_json(r) for r in rows]}


@router.get("/accounts/{account_id}")
async def one_account(account_id: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    row = await _account(svc, account_id)
    async with svc.db.read() as conn:
        balances = {mode: await ledger_store.balance(conn, row.id, mode) for mode in ("live", "test")}
        keys = await account_store.keys_of(conn, row.id)
    return {
        **_account_json(row),
        "balances": {
            mode: {"balance": format_usd(b.available_micros), "held": format_usd(b.held_micros)}
            for mode, b in balances.items()
        },
        "keys": [_key_json(k) for k in keys],
    }


@router.patch("/accounts/{account_id}")
async def change_account(account_id: str, body: AccountChange, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    changes = body.model_dump(include=body.model_fields_set)
    if not changes:
        raise InvalidRequest("nothing to change: name, rate_limit_per_minute or retention_days", param="body")
    if "name" in changes and changes["name"] is None:
        raise InvalidRequest("an account's name cannot be removed", param="name")
    async with svc.db.transaction() as conn:
        row = await account_store.account_by_id(conn, account_id)
        if row is None:
            raise NotFound(f"no account {account_id!r}", param="account_id")
        renamed = "name" in changes and changes["name"] != row.name
        if renamed and await account_store.account_by_name(conn, changes["name"]) is not None:
            raise Conflict(f"an account named {changes['name']!r} already exists", param="name")
        await account_store.update_account(conn, account_id, **changes)
        await caller.audit(conn, "account.update", account_id, changes)
        updated = await account_store.account_by_id(conn, account_id)
    assert updated is not None
    return _account_json(updated)


@router.patch("/keys/{key_id}")
async def change_key(key_id: str, body: KeyChange, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    asked = body.model_dump(include=body.model_fields_set)
    if not asked:
        raise InvalidRequest("nothing to change: name, spend_cap_daily or spend_cap_total", param="body")
    if "name" in asked and asked["name"] is None:
        raise InvalidRequest('a key\'s name cannot be null (use "" for none)', param="name")
    values: dict[str, Any] = {}
    for field in ("spend_cap_daily", "spend_cap_total"):
        if field in asked:
            cap = asked[field]
            values[f"{field}_micros"] = micros_from_usd(cap) if cap is not None else None
    if "name" in asked:
        values["name"] = asked["name"]
    async with svc.db.transaction() as conn:
        if not await account_store.update_key(conn, key_id, **values):
            raise NotFound(f"no key {key_id!r}", param="key_id")
        details = {k: str(v) if v is not None else None for k, v in asked.items()}
        await caller.audit(conn, "key.update", key_id, details)
        key = await account_store.key_by_id(conn, key_id)
    assert key is not None
    return _key_json(key)


@router.get("/accounts/{account_id}/jobs")
async def account_jobs(
    account_id: str,
    caller: Admin,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The account's jobs, both modes, newest first (``GET /admin/jobs`` filters more)."""
    svc = caller.svc
    row = await _account(svc, account_id)
    async with svc.db.read() as conn:
        cursor = None
        if before:
            cursor = await job_store.get_job(conn, before, account_id=row.id)
            if cursor is None:
                raise NotFound(f"no job {before!r} of this account to page before", param="before")
        jobs = await job_search.search(
            conn, job_search.JobFilter(account_id=row.id), limit=limit + 1, before=cursor
        )
    return {"object": "list", "data": [job_summary(j) for j in jobs[:limit]], "has_more": len(jobs) > limit}


@router.post("/accounts/{account_id}/keys", status_code=201)
async def new_key(account_id: str, body: NewKey, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    row = await _account(svc, account_id)
    async with svc.db.transaction() as conn:
        issued = await issue_key(
            conn,
            row,
            mode=body.mode,
            name=body.name,
            spend_cap_daily_micros=micros_from_usd(body.spend_cap_daily)
            if body.spend_cap_daily is not None
            else None,
            spend_cap_total_micros=micros_from_usd(body.spend_cap_total)
            if body.spend_cap_total is not None
            else None,
        )
        key = await account_store.key_by_id(conn, issued.id)
        await caller.audit(
            conn, "key.issue", row.id, {"key_id": issued.id, "mode": body.mode, "name": body.name}
        )
    assert key is not None
    return {**_key_json(key), "secret": issued.secret}


@router.delete("/keys/{key_id}")
async def delete_key(key_id: str, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    async with svc.db.transaction() as conn:
        await revoke_key(conn, key_id)
        await caller.audit(conn, "key.revoke", key_id)
    return {"id": key_id, "revoked": True}


@router.post("/accounts/{account_id}/topups", status_code=201)
async def new_topup(account_id: str, body: TopUp, caller: Admin) -> dict[str, Any]:
    svc = caller.svc
    row = await _account(svc, account_id)
    async with svc.db.transaction() as conn:
        await top_up(conn, row, micros=micros_from_usd(body.amount), mode=body.mode, memo=body.memo)
        balance = await ledger_store.balance(conn, row.id, body.mode)
        details = {"amount": str(body.amount), "mode": body.mode, "memo": body.memo}
        await caller.audit(conn, "account.topup", row.id, details)
    return {"account_id": row.id, "mode": body.mode, "balance": format_usd(balance.available_micros)}


@router.get("/accounts/{account_id}/ledger")
async def account_ledger(
    account_id: str,
    caller: Admin,
    mode: Literal["live", "test"] = "live",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    svc = caller.svc
    row = await _account(svc, account_id)
    async with svc.db.read() as conn:
        entries = await ledger_store.entries(conn, row.id, mode, limit=limit + 1, before_id=before)
    page = entries[:limit]
    return {
        "object": "list",
        "data": [ledger_entry(e) for e in page],
        "has_more": len(entries) > limit,
    }
