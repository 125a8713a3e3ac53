"""The outbox: events written in the same transaction as the change they report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.ids import new_id
from vidgate.store.tables import events


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    public_id: str
    account_id: str
    job_id: str | None
    type: str
    payload: dict[str, Any]
    created_at: datetime


def _event(row: Any) -> Event:
    return Event(**{k: row._mapping[k] for k in Event.__slots__})


async def append_event(
    conn: AsyncConnection,
    *,
    account_id: str,
    job_id: str | None,
    type: str,
    payload: dict[str, Any],
    at: datetime,
) -> str:
    public_id = new_id("msg")
    await conn.execute(
        events.insert().values(
            public_id=public_id,
            account_id=account_id,
            job_id=job_id,
            type=type,
            payload=payload,
            created_at=at,
        )
    )
    return public_id


async def events_after(conn: AsyncConnection, after_id: int, *, limit: int) -> list[Event]:
    rows = await conn.execute(select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit))
    return [_event(r) for r in rows]


async def events_of_job(conn: AsyncConnection, job_id: str) -> list[Event]:
    rows = await conn.execute(select(events).where(events.c.job_id == job_id).order_by(events.c.id))
    return [_event(r) for r in rows]
