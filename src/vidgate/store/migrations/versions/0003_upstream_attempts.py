"""upstream attempts: every submission recorded before it is sent

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("route_index", sa.Integer(), nullable=False),
        sa.Column("upstream_model", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("upstream_id", sa.String(length=200), nullable=True),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("possible_duplicate", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('pending', 'accepted', 'refused', 'unknown')",
            name=op.f("ck_upstream_attempts_outcome"),
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_upstream_attempts_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_attempts")),
        sa.UniqueConstraint("job_id", "number", name="uq_upstream_attempts_job_number"),
    )


def downgrade() -> None:
    op.drop_table("upstream_attempts")
