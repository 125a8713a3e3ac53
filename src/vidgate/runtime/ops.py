"""The operational side of one process: its ``Metrics``, its readiness checks, the store
gauges, and (for ``vidgate worker --metrics-port``) a small HTTP server for them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from starlette.applications import Starlette

from vidgate import __version__
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.media.storage import LocalStorage, Storage
from vidgate.observability.health import Ops, Probe, Readiness, routes
from vidgate.observability.metrics import Metrics
from vidgate.observability.store_gauges import StoreGauges, StoreSnapshot
from vidgate.runtime.roles import Role
from vidgate.store import gauges
from vidgate.store.engine import Database
from vidgate.webhooks.sender import CURSOR

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0


def build_ops(settings: Settings, db: Database, storage: Storage, role: Role) -> Ops:
    metrics = Metrics(role=role.value, version=__version__)
    probes = [Probe("database", lambda: _database(db)), Probe("storage", lambda: _storage(storage))]
    ops = Ops(metrics, Readiness(probes, timeout_s=READY_TIMEOUT_S))
    if settings.redis_url:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.redis_url.removeprefix("async+"))
        probes.append(Probe("redis", client.ping))
        ops.on_close(client.aclose)
    ops.gauges = StoreGauges(lambda: store_snapshot(db), timeout_s=READY_TIMEOUT_S)
    metrics.register(ops.gauges)
    return ops


async def _database(db: Database) -> None:
    async with db.read() as conn:
        await conn.exec_driver_sql("SELECT 1")


async def _storage(storage: Storage) -> None:
    if isinstance(storage, LocalStorage):
        await asyncio.to_thread(_writable, storage.root)
        return
    await storage.size("readyz/probe")  # one HEAD: the bucket answers and our credentials work


def _writable(root: Path) -> None:
    """The media folder (or the folder it will be made in) exists and is writable."""
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{folder} is not a writable folder")


async def store_snapshot(db: Database) -> StoreSnapshot:
    """The store gauges, from indexed reads over active jobs and the unsent outbox only."""
    now = utcnow()
    async with db.read() as conn:
        found = await gauges.read_gauges(conn, now=now, cursor=CURSOR)
    oldest = found.oldest_due_at
    return StoreSnapshot(
        active_jobs={(g.state, g.provider or "none", g.model): g.count for g in found.active},
        due_jobs=found.due,
        oldest_due_age_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        outbox_events_pending=found.unsent_events,
        deliveries_pending=found.pending_deliveries,
    )


def ops_app(ops: Ops) -> Starlette:
    """``/healthz``, ``/readyz`` and ``/metrics`` alone (a worker process has no API)."""
    return Starlette(routes=routes(lambda _request: ops))


def bind(host: str, port: int) -> socket.socket:
    """The listening socket for the metrics server, bound now so a busy port fails early."""
    return socket.create_server((host, port), reuse_port=False)


async def serve_ops(ops: Ops, sock: socket.socket, *, stop: asyncio.Event) -> None:
    """Serve ``ops_app`` on ``sock`` until ``stop`` is set (``vidgate worker --metrics-port``)."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the worker owns SIGINT and SIGTERM
            yield

    config = uvicorn.Config(ops_app(ops), log_config=None, access_log=False, log_level="warning")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-server")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        sock.close()
