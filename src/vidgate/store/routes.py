"""Route settings in the database: one row per model an operator changed (``route_config``).

The row holds the model's routing as JSON (``{"policy", "routes": [...]}``, see
``vidgate.catalog.routing.RouteConfig``) with who saved it and when; no row means the
catalog's own routing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from vidgate.store.tables import route_config

_INSERTS: dict[str, Callable[[Table], Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True, slots=True)
class StoredRoutes:
    model_id: str
    config: dict[str, Any]
    updated_at: datetime
    updated_by: str


def _stored(row: Any) -> StoredRoutes:
    return StoredRoutes(**{k: row._mapping[k] for k in StoredRoutes.__slots__})


async def all_settings(conn: AsyncConnection) -> dict[str, StoredRoutes]:
    rows = await conn.execute(select(route_config))
    return {row.model_id: _stored(row) for row in rows}


async def settings_of(conn: AsyncConnection, model_id: str) -> StoredRoutes | None:
    row = (await conn.execute(select(route_config).where(route_config.c.model_id == model_id))).first()
    return _stored(row) if row else None


async def save(
    conn: AsyncConnection, model_id: str, config: dict[str, Any], *, at: datetime, by: str
) -> None:
    """Insert or replace the model's settings (one statement: two saves never collide)."""
    values = {"config": config, "updated_at": at, "updated_by": by[:120]}
    statement = _INSERTS[conn.dialect.name](route_config).values(model_id=model_id, **values)
    await conn.execute(statement.on_conflict_do_update(index_elements=["model_id"], set_=values))


async def forget(conn: AsyncConnection, model_id: str) -> bool:
    """Drop the model's settings (back to the catalog's); False when it had none."""
    result = await conn.execute(delete(route_config).where(route_config.c.model_id == model_id))
    return bool(result.rowcount)
