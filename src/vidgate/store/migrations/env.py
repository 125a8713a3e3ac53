"""Alembic environment: always handed a live connection by ``vidgate.store.migrate``."""

from __future__ import annotations

from alembic import context

from vidgate.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the in-process runner is supported
    raise SystemExit("run migrations with `vidgate migrate`, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
context.run_migrations()
