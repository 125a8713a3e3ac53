"""Webhook delivery in the database: deliveries and their attempts, handshakes, the outbox cursor.

The sender fans each ``events`` row out to one *delivery* per destination (the
job's own ``webhook_url``, or an account endpoint, see ``store.webhook_endpoints``),
unique per (event, destination), so a destination can never be handed one event twice. Each
delivery keeps its schedule (``next_attempt_at``), its lease (claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, exactly like job leases), and every
attempt it made.

The outbox cursor is a low watermark: every event at or below it has been fanned
out. PostgreSQL can commit event ids out of order (a sequence hands out 5 and 6,
6 commits first), so events above the watermark are also marked in
``outbox_seen``, and the watermark only moves over events older than a grace
period. Only this module writes the SQL; ``vidgate.delivery`` decides what to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.events import Event
from vidgate.store.tables import Timestamp, events, metadata

DELIVERY_STATES = ("pending", "succeeded", "failed", "skipped", "canceled")
_states = ", ".join(f"'{s}'" for s in DELIVERY_STATES)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", Integer, ForeignKey("events.id"), nullable=False),
    Column("event_public_id", String(40), nullable=False),  # webhook-id, stable across retries
    Column("event_type", String(40), nullable=False),
    Column("account_id", String(40), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("job_id", String(40), nullable=True),
    Column("destination", String(40), nullable=False),  # "job", or the endpoint id
    Column("endpoint_id", String(40), nullable=True),
    Column("url", Text, nullable=False),
    Column("format", String(24), nullable=False),  # "standard", or the dialect that rendered it
    Column("body", Text, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("window_started_at", Timestamp, nullable=False),  # retries stop max_age after this
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", Timestamp, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_response", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("delivered_at", Timestamp, nullable=True),
    CheckConstraint(f"status IN ({_states})", name="status"),
    Index("uq_webhook_deliveries_event_destination", "event_id", "destination", unique=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_account", "account_id", "mode", "created_at", "id"),
    Index("ix_webhook_deliveries_job", "job_id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("succeeded", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    Column("response_body", Text, nullable=True),
    Index("uq_webhook_attempts_delivery_number", "delivery_id", "number", unique=True),
)

# A dialect's callback handshake (MiniMax's challenge echo), once per job.
webhook_handshakes = Table(
    "webhook_handshakes",
    metadata,
    Column("job_id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("checked_at", Timestamp, nullable=False),
)

outbox_cursors = Table(
    "outbox_cursors",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("last_event_id", Integer, nullable=False),
)

outbox_seen = Table(
    "outbox_seen",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=False),
)


# ----------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: int
    event_public_id: str
    event_type: str
    account_id: str
    mode: str
    job_id: str | None
    destination: str
    endpoint_id: str | None
    url: str
    format: str
    body: str
    headers: dict[str, str]
    status: str
    attempts: int
    window_started_at: datetime
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    succeeded: bool
    error: str | None
    response_body: str | None


@dataclass(frozen=True, slots=True)
class Handshake:
    job_id: str
    url: str
    verified: bool
    detail: str


def _row(cls: Any, row: Any) -> Any:
    return cls(**{k: row._mapping[k] for k in cls.__slots__})


async def _first(conn: AsyncConnection, query: Any, cls: Any) -> Any:
    row = (await conn.execute(query)).first()
    return _row(cls, row) if row else None


def _insert_ignoring_duplicates(conn: AsyncConnection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


D = webhook_deliveries.c


# ---------------------------------------------------------- outbox cursor


def _unseen() -> Any:
    return ~select(outbox_seen.c.event_id).where(outbox_seen.c.event_id == events.c.id).exists()


async def lock_cursor(conn: AsyncConnection, name: str) -> int:
    """The cursor's watermark, row-locked until the transaction ends (one fan-out at a time)."""
    await conn.execute(_insert_ignoring_duplicates(conn, outbox_cursors).values(name=name, last_event_id=0))
    query = select(outbox_cursors.c.last_event_id).where(outbox_cursors.c.name == name)
    return int(await conn.scalar(query.with_for_update()) or 0)


async def unseen_events(conn: AsyncConnection, *, after: int, limit: int) -> list[Event]:
    """Events above the watermark that have not been fanned out yet, oldest first."""
    query = select(events).where(events.c.id > after, _unseen()).order_by(events.c.id).limit(limit)
    return [_row(Event, r) for r in await conn.execute(query)]


async def outbox_has_work(conn: AsyncConnection, name: str, *, horizon: datetime) -> bool:
    """A cheap read: is anything above the watermark unseen, or old enough to move it over?"""
    mark = await conn.scalar(select(outbox_cursors.c.last_event_id).where(outbox_cursors.c.name == name))
    pending = and_(events.c.id > int(mark or 0), or_(_unseen(), events.c.created_at <= horizon))
    return await conn.scalar(select(events.c.id).where(pending).limit(1)) is not None


async def mark_seen(conn: AsyncConnection, event_ids: list[int]) -> None:
    if event_ids:
        await conn.execute(outbox_seen.insert(), [{"event_id": i} for i in event_ids])


async def advance_cursor(conn: AsyncConnection, name: str, *, current: int, horizon: datetime) -> int:
    """Move the watermark over every seen event older than ``horizon``; returns the new mark.

    Events newer than the horizon stay above the mark (a slower transaction may
    still commit an older id); the ``outbox_seen`` rows keep them from going twice.
    """
    above = events.c.id > current
    candidate = await conn.scalar(select(func.max(events.c.id)).where(above, events.c.created_at <= horizon))
    if candidate is None:
        return current
    first_unseen = await conn.scalar(select(func.min(events.c.id)).where(above, _unseen()))
    mark = int(candidate)
    if first_unseen is not None and int(first_unseen) <= mark:
        mark = int(first_unseen) - 1
    if mark <= current:
        return current
    await conn.execute(update(outbox_cursors).where(outbox_cursors.c.name == name).values(last_event_id=mark))
    await conn.execute(outbox_seen.delete().where(outbox_seen.c.event_id <= mark))
    return mark


# ------------------------------------------------------------ deliveries


def _due(now: datetime) -> Any:
    free = or_(D.lease_expires_at.is_(None), D.lease_expires_at < now)
    return and_(D.status == "pending", D.next_attempt_at <= now, free)


async def insert_delivery(conn: AsyncConnection, **values: Any) -> None:
    """One delivery per (event, destination): a second insert of the same pair does nothing."""
    await conn.execute(_insert_ignoring_duplicates(conn, webhook_deliveries).values(**values))


async def deliveries_due(conn: AsyncConnection, *, now: datetime) -> bool:
    """A cheap read: is any pending delivery due and free to claim?"""
    return await conn.scalar(select(D.id).where(_due(now)).limit(1)) is not None


async def claim_due(
    conn: AsyncConnection, *, owner: str, now: datetime, until: datetime, limit: int
) -> list[Delivery]:
    """Lease up to ``limit`` pending deliveries that are due and not leased by a live sender."""
    due = select(D.id).where(_due(now)).order_by(D.next_attempt_at).limit(limit)
    ids = [row[0] for row in await conn.execute(due.with_for_update(skip_locked=True))]
    if not ids:
        return []
    await conn.execute(
        update(webhook_deliveries)
        .where(D.id.in_(ids), _due(now))
        .values(lease_owner=owner, lease_expires_at=until)
    )
    query = select(webhook_deliveries).where(D.id.in_(ids), D.lease_owner == owner).order_by(D.event_id)
    return [_row(Delivery, r) for r in await conn.execute(query)]


async def record_attempt(
    conn: AsyncConnection,
    delivery: Delivery,
    *,
    owner: str,
    attempt: Attempt,
    status: str,
    next_attempt_at: datetime | None,
    now: datetime,
) -> bool:
    """Store one attempt and the delivery's new state, if ``owner`` still holds the lease."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(D.id == delivery.id, D.lease_owner == owner, D.status == "pending")
        .values(
            status=status, attempts=D.attempts + 1, next_attempt_at=next_attempt_at, lease_owner=None,
            lease_expires_at=None, last_status_code=attempt.status_code, last_error=attempt.error,
            last_response=attempt.response_body, updated_at=now,
            delivered_at=now if attempt.succeeded else D.delivered_at,
        )
    )  # fmt: skip
    if result.rowcount != 1:
        return False
    number = int(await conn.scalar(select(D.attempts).where(D.id == delivery.id)) or 0)
    await conn.execute(
        webhook_attempts.insert().values(
            delivery_id=delivery.id, number=number, started_at=attempt.started_at,
            duration_ms=attempt.duration_ms, status_code=attempt.status_code,
            succeeded=attempt.succeeded, error=attempt.error, response_body=attempt.response_body,
        )
    )  # fmt: skip
    return True


async def close_delivery(
    conn: AsyncConnection, delivery_id: str, *, owner: str, status: str, reason: str, now: datetime
) -> None:
    """End a leased delivery without an attempt (skipped by a handshake, endpoint gone)."""
    await conn.execute(
        update(webhook_deliveries)
        .where(D.id == delivery_id, D.lease_owner == owner)
        .values(
            status=status, next_attempt_at=None, lease_owner=None, lease_expires_at=None,
            last_error=reason, updated_at=now,
        )
    )  # fmt: skip


async def delivery_by_id(conn: AsyncConnection, account_id: str, delivery_id: str) -> Delivery | None:
    query = select(webhook_deliveries).where(D.id == delivery_id, D.account_id == account_id)
    found: Delivery | None = await _first(conn, query, Delivery)
    return found


async def replay_delivery(
    conn: AsyncConnection, account_id: str, delivery_id: str, *, now: datetime, from_states: tuple[str, ...]
) -> bool:
    """Schedule a finished delivery again, now, with a fresh retry window."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(D.id == delivery_id, D.account_id == account_id, D.status.in_(from_states))
        .values(
            status="pending", next_attempt_at=now, window_started_at=now, lease_owner=None,
            lease_expires_at=None, delivered_at=None, updated_at=now,
        )
    )  # fmt: skip
    return result.rowcount == 1


async def list_deliveries(
    conn: AsyncConnection,
    account_id: str,
    mode: str,
    *,
    limit: int,
    before: Delivery | None = None,
    job_id: str | None = None,
    event_id: str | None = None,
    event_type: str | None = None,
    status: str | None = None,
    endpoint_id: str | None = None,
) -> list[Delivery]:
    """A page of an account's deliveries, newest first, keyset-paginated on (created_at, id)."""
    query = select(webhook_deliveries).where(D.account_id == account_id, D.mode == mode)
    filters = ((D.job_id, job_id), (D.event_public_id, event_id), (D.event_type, event_type),
               (D.status, status), (D.endpoint_id, endpoint_id))  # fmt: skip
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    if before is not None:
        at = before.created_at
        query = query.where(or_(D.created_at < at, and_(D.created_at == at, D.id < before.id)))
    rows = await conn.execute(query.order_by(D.created_at.desc(), D.id.desc()).limit(limit))
    return [_row(Delivery, r) for r in rows]


async def attempts_of(conn: AsyncConnection, delivery_ids: list[str]) -> dict[str, list[Attempt]]:
    found: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return found
    a = webhook_attempts.c
    query = select(webhook_attempts).where(a.delivery_id.in_(delivery_ids)).order_by(a.delivery_id, a.number)
    for row in await conn.execute(query):
        found[row.delivery_id].append(_row(Attempt, row))
    return found


# ------------------------------------------------------------ handshakes


async def handshake_of(conn: AsyncConnection, job_id: str) -> Handshake | None:
    query = select(webhook_handshakes).where(webhook_handshakes.c.job_id == job_id)
    found: Handshake | None = await _first(conn, query, Handshake)
    return found


async def save_handshake(
    conn: AsyncConnection, *, job_id: str, url: str, verified: bool, detail: str, now: datetime
) -> None:
    """The first verdict for a job stands (a concurrent second one changes nothing)."""
    values = {"job_id": job_id, "url": url, "verified": verified, "detail": detail, "checked_at": now}
    await conn.execute(_insert_ignoring_duplicates(conn, webhook_handshakes).values(**values))
