"""The database schema, as SQLAlchemy Core tables (SQLite and PostgreSQL alike).

Money columns are integer micro-USD (``*_micros``). Times are timezone-aware UTC.
The check constraints make the database itself refuse an unknown job state, a
ledger kind that does not exist, or a balance below zero; the partial unique index
on the ledger makes a second hold, capture or release for one job impossible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from vidgate.domain.states import JobStatus

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Money = BigInteger().with_variant(Integer(), "sqlite")  # SQLite INTEGER is 64-bit already


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UTCDateTime()

_states = ", ".join(f"'{s.value}'" for s in JobStatus)
LEDGER_KINDS = ("topup", "hold", "capture", "release", "adjustment")
_kinds = ", ".join(f"'{k}'" for k in LEDGER_KINDS)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("webhook_secret", String(400), nullable=False),  # sealed (vidgate.keyring)
    Column("rate_limit_per_minute", Integer, nullable=True),  # None: the server default
    Column("retention_days", Integer, nullable=True),
    Column("created_at", Timestamp, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("prefix", String(32), nullable=False),  # shown in listings, e.g. "vg_test_3f9a"
    Column("secret_hash", String(64), nullable=False, unique=True),  # HMAC of the key's digest
    Column("signing_key", String(400), nullable=True),  # the key's digest, sealed; NULL: legacy row
    Column("mode", String(8), nullable=False),
    Column("spend_cap_daily_micros", Money, nullable=True),
    Column("spend_cap_total_micros", Money, nullable=True),
    Column("spent_total_micros", Money, nullable=False, server_default="0"),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    CheckConstraint("mode IN ('live', 'test')", name="mode"),
)

# Spend per key per UTC day, for daily caps (held + captured, net of releases).
key_spend_daily = Table(
    "key_spend_daily",
    metadata,
    Column("key_id", String(40), ForeignKey("api_keys.id"), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD
    Column("spent_micros", Money, nullable=False, server_default="0"),
)

# The running totals of the ledger: kept in the same transaction as every entry,
# so a conditional UPDATE can refuse a hold atomically (no read-then-write race).
balances = Table(
    "balances",
    metadata,
    Column("account_id", String(40), ForeignKey("accounts.id"), primary_key=True),
    Column("mode", String(8), primary_key=True),
    Column("available_micros", Money, nullable=False, server_default="0"),
    Column("held_micros", Money, nullable=False, server_default="0"),
    CheckConstraint("available_micros >= 0", name="available_not_negative"),
    CheckConstraint("held_micros >= 0", name="held_not_negative"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_micros", Money, nullable=False),  # change to the available balance
    Column("held_delta_micros", Money, nullable=False, server_default="0"),  # change to held
    Column("job_id", String(40), nullable=True),
    Column("key_id", String(40), nullable=True),
    Column("memo", Text, nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    CheckConstraint(f"kind IN ({_kinds})", name="kind"),
    Index("ix_ledger_account_mode_id", "account_id", "mode", "id"),
    Index(
        "uq_ledger_job_kind",
        "job_id",
        "kind",
        unique=True,
        sqlite_where=text("job_id IS NOT NULL AND kind IN ('hold', 'capture', 'release')"),
        postgresql_where=text("job_id IS NOT NULL AND kind IN ('hold', 'capture', 'release')"),
    ),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("dialect", String(16), nullable=False),
    Column("model", String(120), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Integer, nullable=False, server_default="0"),
    Column("request", JSON, nullable=False),  # the normalised GenerationRequest
    Column("metadata", JSON, nullable=False),
    Column("estimated_micros", Money, nullable=False),
    Column("held_micros", Money, nullable=False),
    Column("charged_micros", Money, nullable=True),
    Column("idempotency_scope", String(80), nullable=True),
    Column("idempotency_key", String(300), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("remixed_from", String(40), nullable=True),
    Column("webhook_url", Text, nullable=True),
    # Upstream tracking
    Column("route_index", Integer, nullable=False, server_default="0"),
    Column("provider", String(40), nullable=True),
    Column("upstream_model", String(200), nullable=True),
    Column("upstream_id", String(200), nullable=True),
    Column("upstream_request_id", String(200), nullable=True),
    Column("upstream_state", JSON(none_as_null=True), nullable=True),
    Column("upstream_status", String(60), nullable=True),
    Column("outputs", JSON(none_as_null=True), nullable=True),  # UpstreamOutput list once done upstream
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("eta_s", Float, nullable=True),
    Column("upstream_key", String(40), nullable=True),  # which key of the provider's pool (a label)
    # What the upstream charged for the job (migration 0005): the figure reports use,
    # the catalog's estimate and the upstream's own report, its units, and the source.
    Column("upstream_cost_micros", Money, nullable=True),
    Column("upstream_cost_estimate_micros", Money, nullable=True),
    Column("upstream_cost_reported_micros", Money, nullable=True),
    Column("upstream_cost_units", String(80), nullable=True),
    Column("upstream_cost_source", String(16), nullable=True),
    # Outcome
    Column("error_code", String(60), nullable=True),
    Column("error_message", Text, nullable=True),
    Column(
        "media", JSON(none_as_null=True), nullable=True
    ),  # {"video": key, "thumbnail": key, "duration_s", ...}
    Column("media_expires_at", Timestamp, nullable=True),
    Column("media_deleted_at", Timestamp, nullable=True),
    Column("deleted_at", Timestamp, nullable=True),
    # Scheduling and leasing
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp, nullable=True),
    Column("deadline_at", Timestamp, nullable=False),
    Column("run_at", Timestamp, nullable=True),  # next step is due at; None when terminal
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", Timestamp, nullable=True),
    CheckConstraint(f"status IN ({_states})", name="status"),
    CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
    CheckConstraint("charged_micros IS NULL OR charged_micros <= held_micros", name="charge_within_hold"),
    Index("ix_jobs_due", "run_at"),
    Index("ix_jobs_account_created", "account_id", "mode", "created_at", "id"),
    Index("ix_jobs_upstream", "provider", "upstream_id"),
    Index("ix_jobs_completed", "completed_at"),
    Index(
        "uq_jobs_idempotency",
        "account_id",
        "idempotency_scope",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
)

# The outbox: every event is written in the transaction that made it true, and
# delivered (webhooks, dialect pushes) afterwards by the sender.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),  # msg_... for webhook-id
    Column("account_id", String(40), nullable=False),
    Column("job_id", String(40), nullable=True),
    Column("type", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_events_account_id", "account_id", "id"),
)

kv = Table(  # small server-wide facts (first-run marker and the like)
    "kv",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every upstream submission, recorded BEFORE it is sent: a crash between sending and
# recording the answer leaves an ``outcome = 'pending'`` row, which the next worker
# reconciles (adopt the upstream job it finds, or submit again and count a possible
# duplicate) instead of guessing.
upstream_attempts = Table(
    "upstream_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(40), ForeignKey("jobs.id"), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, ... per job
    Column("provider", String(40), nullable=False),
    Column("route_index", Integer, nullable=False),
    Column("upstream_model", String(200), nullable=True),
    # pending (sent or about to be), accepted, refused (provably not accepted), unknown
    Column("outcome", String(16), nullable=False),
    Column("upstream_id", String(200), nullable=True),
    Column("error_code", String(60), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("possible_duplicate", Boolean, nullable=False, server_default=text("false")),
    Column("upstream_key", String(40), nullable=True),
    Column("started_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp, nullable=True),
    CheckConstraint("outcome IN ('pending', 'accepted', 'refused', 'unknown')", name="outcome"),
    UniqueConstraint("job_id", "number", name="uq_upstream_attempts_job_number"),
)


# Per-model route settings an operator changes at run time (migration 0005): JSON of
# {"policy": ..., "routes": [{"provider", "model", "enabled", "weight"}, ...]} in order.
route_config = Table(
    "route_config",
    metadata,
    Column("model_id", String(120), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("updated_by", String(120), nullable=False),
)

# Every admin action (API, CLI or console), who and when (migration 0005).
admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_admin_audit_at", "at"),
)
