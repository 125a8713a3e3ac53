"""Live route settings: the catalog's routes merged with what an operator changed.

Every process (worker and API alike) reads the settings through ``RouteSettings``,
which keeps a snapshot of the ``route_config`` table no older than ``max_age_s``
(2 s): a change made through the admin API in one process reaches the next job in
every other process without a restart. A change is validated against the catalog
(``catalog.routing.validated``: reorder, enable or weight the catalog's routes, never
add one) and written together with its audit entry, in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vidgate.catalog.loader import Catalog
from vidgate.catalog.models import ModelSpec
from vidgate.catalog.routing import RouteConfig, catalog_config, merged, validated
from vidgate.clock import utcnow
from vidgate.errors import GatewayError, NotFound
from vidgate.store import audit
from vidgate.store import routes as route_store
from vidgate.store.engine import Database
from vidgate.store.routes import StoredRoutes

log = logging.getLogger(__name__)

MAX_AGE_S = 2.0  # how stale a process's view of the route settings may be


@dataclass(frozen=True, slots=True)
class RouteView:
    """A model's routing as it stands, and who changed it last (None: the catalog's)."""

    spec: ModelSpec
    config: RouteConfig
    updated_at: datetime | None
    updated_by: str | None


class RouteSettings:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        *,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.max_age_s = max_age_s
        self._clock = clock
        self._snapshot: dict[str, RouteConfig] = {}
        self._read_at: float | None = None
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ reading

    async def current(self, spec: ModelSpec) -> RouteConfig:
        """The settings in force for ``spec`` (read again when the snapshot is too old)."""
        if self._stale():
            await self.refresh()
        return merged(spec, self._snapshot.get(spec.id))

    def cached(self, spec: ModelSpec) -> RouteConfig:
        """The snapshot's settings for ``spec``, without waiting; an old snapshot is
        refreshed in the background (for synchronous callers: availability, quotes)."""
        if self._stale():
            self._refresh_soon()
        return merged(spec, self._snapshot.get(spec.id))

    async def refresh(self) -> None:
        """Read every model's settings now."""
        previous, self._read_at = self._read_at, self._clock()  # others use the old snapshot meanwhile
        try:
            async with self.db.read() as conn:
                rows = await route_store.all_settings(conn)
        except BaseException:
            self._read_at = previous
            raise
        self._snapshot = {model_id: config for model_id, row in rows.items() if (config := self._parse(row))}

    async def aclose(self) -> None:
        """Stop any background read still running (before the database goes)."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=2)

    def _stale(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self.max_age_s

    def _refresh_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._refresh_quietly(), name="route-settings")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # noqa: BLE001 (the next caller tries again)
            log.warning("could not read the route settings (%s); using the last ones read", exc)

    def _parse(self, row: StoredRoutes) -> RouteConfig | None:
        try:
            return RouteConfig.from_json(row.config)
        except GatewayError as exc:
            log.warning("ignoring the stored route settings of %s: %s", row.model_id, exc.message)
            return None

    async def view(self, model_id: str) -> RouteView:
        """One model's routing, read now; ``NotFound`` for a model the catalog does not have."""
        spec = self._spec(model_id)
        async with self.db.read() as conn:
            row = await route_store.settings_of(conn, spec.id)
        return self._view(spec, row)

    async def views(self) -> list[RouteView]:
        """Every orderable model's routing, in catalog order."""
        async with self.db.read() as conn:
            rows = await route_store.all_settings(conn)
        return [self._view(spec, rows.get(spec.id)) for spec in self.catalog.all() if spec.routes]

    def _view(self, spec: ModelSpec, row: StoredRoutes | None) -> RouteView:
        stored = self._parse(row) if row is not None else None
        if row is None or stored is None:
            return RouteView(spec, catalog_config(spec), None, None)
        return RouteView(spec, merged(spec, stored), row.updated_at, row.updated_by)

    def _spec(self, model_id: str) -> ModelSpec:
        try:
            return self.catalog.get(model_id)
        except GatewayError:
            raise NotFound(f"no model {model_id!r} in the catalog", param="model_id") from None

    # ------------------------------------------------------------ changing

    async def update(self, model_id: str, config: RouteConfig, *, actor: str) -> RouteView:
        """Save ``config`` for the model (validated against the catalog) and audit it."""
        spec = self._spec(model_id)
        validated(spec, config)
        now = utcnow()
        async with self.db.transaction() as conn:
            await route_store.save(conn, spec.id, config.to_json(), at=now, by=actor)
            await audit.record(
                conn, actor=actor, action="routes.update", target=spec.id, at=now, details=config.to_json()
            )
        self._snapshot[spec.id] = config
        log.info("routes of %s changed by %s: %s", spec.id, actor, config.to_json())
        return RouteView(spec, config, now, actor)

    async def reset(self, model_id: str, *, actor: str) -> RouteView:
        """Back to the catalog's routing, audited (also when nothing had been changed)."""
        spec = self._spec(model_id)
        config = catalog_config(spec)
        now = utcnow()
        async with self.db.transaction() as conn:
            existed = await route_store.forget(conn, spec.id)
            await audit.record(
                conn,
                actor=actor,
                action="routes.reset",
                target=spec.id,
                at=now,
                details={**config.to_json(), "had_settings": existed},
            )
        self._snapshot.pop(spec.id, None)
        log.info("routes of %s reset to the catalog's by %s", spec.id, actor)
        return RouteView(spec, config, None, None)
