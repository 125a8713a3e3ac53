"""Admin: the audit trail, newest first (who did what, to what, and when)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from vidgate.api.admin.access import Admin
from vidgate.store import audit

router = APIRouter(prefix="/admin", tags=["admin"])


def audit_json(entry: audit.AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
    }


@router.get("/audit")
async def audit_trail(
    caller: Admin,
    target: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    """``target`` narrows to one account, key, job, model or provider."""
    async with caller.svc.db.read() as conn:
        entries = await audit.recent(conn, limit=limit + 1, target=target or None, before_id=before)
    page = entries[:limit]
    return {"object": "list", "data": [audit_json(e) for e in page], "has_more": len(entries) > limit}
