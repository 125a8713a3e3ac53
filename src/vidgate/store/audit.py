"""The admin audit trail: every admin action, who did it and when.

An action is recorded in the transaction that carries it out, so the trail never
shows an action that did not happen, nor misses one that did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.tables import admin_audit


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    target: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(admin_audit).values(
            at=at, actor=actor[:120], action=action[:60], target=target[:200], details=details or {}
        )
    )


async def recent(
    conn: AsyncConnection, *, limit: int = 100, target: str | None = None, before_id: int | None = None
) -> list[AuditEntry]:
    """Newest first; ``target`` narrows to one account, key, job or model."""
    query = select(admin_audit).order_by(admin_audit.c.id.desc()).limit(limit)
    if target is not None:
        query = query.where(admin_audit.c.target == target)
    if before_id is not None:
        query = query.where(admin_audit.c.id < before_id)
    rows = (await conn.execute(query)).all()
    return [AuditEntry(**{k: row._mapping[k] for k in AuditEntry.__slots__}) for row in rows]
