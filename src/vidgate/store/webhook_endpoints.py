"""Webhook endpoints in the database: the URLs an account subscribed to event types, and
the signing secrets a delivery is signed with (an endpoint's own, or the account's for
a job's ``webhook_url``), sealed at rest (``vidgate.keyring``) and opened here.

Deleting an endpoint cancels the deliveries still waiting to go to it
(``store.delivery``), in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, Text, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.delivery import webhook_deliveries
from vidgate.store.engine import keyring_of
from vidgate.store.tables import Timestamp, accounts, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),  # list of event types, or ["*"]
    Column("secret", String(400), nullable=False),  # sealed (vidgate.keyring)
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("deleted_at", Timestamp, nullable=True),
    Index("ix_webhook_endpoints_account", "account_id", "mode"),
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    account_id: str
    mode: str
    url: str
    events: list[str]
    secret: str
    description: str
    created_at: datetime
    deleted_at: datetime | None

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


E = webhook_endpoints.c
D = webhook_deliveries.c


def _endpoint(conn: AsyncConnection, row: Any) -> Endpoint:
    values = {k: row._mapping[k] for k in Endpoint.__slots__}
    values["secret"] = keyring_of(conn).open(values["secret"])
    return Endpoint(**values)


async def insert_endpoint(conn: AsyncConnection, **values: Any) -> Endpoint:
    """Insert an endpoint (``secret`` in the clear: it is sealed here)."""
    sealed = {**values, "secret": keyring_of(conn).seal(values["secret"])}
    await conn.execute(webhook_endpoints.insert().values(**sealed))
    found = await endpoint_by_id(conn, values["account_id"], values["id"])
    assert found is not None
    return found


async def endpoint_by_id(conn: AsyncConnection, account_id: str, endpoint_id: str) -> Endpoint | None:
    live = and_(E.id == endpoint_id, E.account_id == account_id, E.deleted_at.is_(None))
    row = (await conn.execute(select(webhook_endpoints).where(live))).first()
    return _endpoint(conn, row) if row else None


async def endpoints_of(conn: AsyncConnection, account_id: str, mode: str | None) -> list[Endpoint]:
    """An account's live endpoints (of one mode, or of every mode with ``mode=None``)."""
    query = select(webhook_endpoints).where(E.account_id == account_id, E.deleted_at.is_(None))
    if mode is not None:
        query = query.where(E.mode == mode)
    rows = await conn.execute(query.order_by(E.created_at, E.id))
    return [_endpoint(conn, r) for r in rows]


async def count_endpoints(conn: AsyncConnection, account_id: str) -> int:
    query = select(func.count()).where(E.account_id == account_id, E.deleted_at.is_(None))
    return int(await conn.scalar(query) or 0)


async def delete_endpoint(conn: AsyncConnection, account_id: str, endpoint_id: str, *, now: datetime) -> bool:
    """Soft-delete an endpoint and cancel what was still waiting to go to it."""
    live = and_(E.id == endpoint_id, E.account_id == account_id, E.deleted_at.is_(None))
    result = await conn.execute(update(webhook_endpoints).where(live).values(deleted_at=now))
    if result.rowcount != 1:
        return False
    await conn.execute(
        update(webhook_deliveries)
        .where(D.endpoint_id == endpoint_id, D.status == "pending")
        .values(status="canceled", next_attempt_at=None, updated_at=now, last_error="endpoint deleted")
    )
    return True


async def endpoint_secret(conn: AsyncConnection, endpoint_id: str) -> str | None:
    """The signing secret of a live endpoint (None once deleted)."""
    found = await conn.scalar(select(E.secret).where(E.id == endpoint_id, E.deleted_at.is_(None)))
    return keyring_of(conn).open(str(found)) if found is not None else None


async def account_webhook_secret(conn: AsyncConnection, account_id: str) -> str | None:
    found = await conn.scalar(select(accounts.c.webhook_secret).where(accounts.c.id == account_id))
    return keyring_of(conn).open(str(found)) if found is not None else None
