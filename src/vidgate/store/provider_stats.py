"""How each upstream has been answering lately, from the recorded submit attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.tables import upstream_attempts


@dataclass(frozen=True, slots=True)
class ProviderStats:
    provider: str
    attempts: int
    accepted: int
    refused: int
    unknown: int  # sent, outcome not known (pending or unknown)
    last_error: str | None
    last_error_at: datetime | None


async def recent(conn: AsyncConnection, *, since: datetime) -> dict[str, ProviderStats]:
    a = upstream_attempts.c
    query = (
        select(a.provider, a.outcome, func.count())
        .where(a.started_at >= since)
        .group_by(a.provider, a.outcome)
    )
    counts: dict[str, dict[str, int]] = {}
    for provider, outcome, n in await conn.execute(query):
        counts.setdefault(provider, {})[outcome] = int(n)
    found: dict[str, ProviderStats] = {}
    for provider, by_outcome in counts.items():
        last = (
            await conn.execute(
                select(a.error_code, a.error_message, a.started_at)
                .where(a.provider == provider, a.started_at >= since, a.outcome != "accepted")
                .order_by(a.id.desc())
                .limit(1)
            )
        ).first()
        found[provider] = ProviderStats(
            provider=provider,
            attempts=sum(by_outcome.values()),
            accepted=by_outcome.get("accepted", 0),
            refused=by_outcome.get("refused", 0),
            unknown=by_outcome.get("pending", 0) + by_outcome.get("unknown", 0),
            last_error=f"{last[0]}: {last[1]}" if last and (last[0] or last[1]) else None,
            last_error_at=last[2] if last else None,
        )
    return found
