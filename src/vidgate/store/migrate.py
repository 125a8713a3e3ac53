"""Bring a database's schema up to date with Alembic, from inside the process.

Several processes may start at once against one PostgreSQL: the upgrade runs under
an advisory lock so that exactly one of them migrates and the others wait.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from vidgate.store.engine import Database

_MIGRATION_LOCK = 7_113_001


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("vidgate.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


async def migrate(db: Database) -> None:
    """Apply every pending migration (idempotent)."""
    async with db.transaction() as conn:
        await conn.run_sync(_upgrade)
