"""business view: upstream cost beside the charge, live route settings, admin audit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 16:00:00.000000

* ``jobs.upstream_cost_*``: what the upstream charged (or would have, for a test-mode
  job) for the job, settled with it. ``upstream_cost_micros`` is the figure reports
  use: the upstream's own report where it gave one, else the catalog's estimate;
  both are kept. ``upstream_cost_units`` holds the upstream's own units where it
  bills in credits ("12 credits"); ``upstream_cost_source`` is published, inferred
  or reported.
* ``jobs.upstream_key`` / ``upstream_attempts.upstream_key``: which key of a
  provider's key pool submitted the job (a label, never the secret), so polls and
  cancels use the key that owns the upstream job.
* ``route_config``: per-model route settings an operator changes without a restart
  (enabled, order, weights, policy), as JSON, with who changed them and when.
* ``admin_audit``: every admin action, who and when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_money = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("upstream_key", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("upstream_cost_micros", _money, nullable=True))
        batch.add_column(sa.Column("upstream_cost_estimate_micros", _money, nullable=True))
        batch.add_column(sa.Column("upstream_cost_reported_micros", _money, nullable=True))
        batch.add_column(sa.Column("upstream_cost_units", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("upstream_cost_source", sa.String(length=16), nullable=True))
    with op.batch_alter_table("upstream_attempts") as batch:
        batch.add_column(sa.Column("upstream_key", sa.String(length=40), nullable=True))
    op.create_index("ix_jobs_completed", "jobs", ["completed_at"])
    op.create_table(
        "route_config",
        sa.Column("model_id", sa.String(length=120), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_route_config")),
    )
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit")),
    )
    op.create_index("ix_admin_audit_at", "admin_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_admin_audit_at", table_name="admin_audit")
    op.drop_table("admin_audit")
    op.drop_table("route_config")
    op.drop_index("ix_jobs_completed", table_name="jobs")
    with op.batch_alter_table("upstream_attempts") as batch:
        batch.drop_column("upstream_key")
    with op.batch_alter_table("jobs") as batch:
        for column in (
            "upstream_cost_source",
            "upstream_cost_units",
            "upstream_cost_reported_micros",
            "upstream_cost_estimate_micros",
            "upstream_cost_micros",
            "upstream_key",
        ):
            batch.drop_column(column)
