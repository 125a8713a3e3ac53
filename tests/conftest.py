"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL when
``VIDGATE_TEST_DATABASE_URL`` is set), settings, a running app, funded accounts."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from vidgate.api.context import Services
from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.config import Settings
from vidgate.domain.job import Principal
from vidgate.money import micros_from_usd
from vidgate.runtime.app import create_app
from vidgate.runtime.services import Runtime
from vidgate.store.engine import Database
from vidgate.store.migrate import migrate

# The environment must not leak into tests: every VIDGATE_* setting comes from fixtures.
for _name in [n for n in os.environ if n.startswith("VIDGATE_") and not n.startswith("VIDGATE_TEST_")]:
    if _name != "VIDGATE_REQUIRE_BROWSER":
        del os.environ[_name]

PG_URL = os.environ.get("VIDGATE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("VIDGATE_TEST_REDIS_URL")


def _admin_url(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _pg_execute(url: str, statement: str) -> None:
    db = Database(_admin_url(url, "postgres"), null_pool=True)
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database that each test clones (fast, and fully isolated)."""
    if not PG_URL:
        yield None
        return
    name = f"vg_tpl_{uuid.uuid4().hex[:10]}"

    async def setup() -> None:
        await _pg_execute(PG_URL, f'CREATE DATABASE "{name}"')
        db = Database(_admin_url(PG_URL, name), null_pool=True)
        await migrate(db)
        await db.dispose()

    asyncio.run(setup())
    yield name
    asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    if PG_URL is None or pg_template is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'vidgate.db'}"
        return
    name = f"vg_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _admin_url(PG_URL, name)
    asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        simulator_latency_s=0.3,
        worker_poll_interval_s=0.05,
        rate_limit_per_minute=0,
        secret_key="test-secret",
        redis_url=REDIS_URL,
    )


@dataclass
class Gateway:
    """A running app (lifespan started, worker in-process) and a client for it."""

    services: Services
    client: httpx.AsyncClient
    runtime: Runtime

    async def account(
        self, name: str = "acme", *, credit: str = "100", mode: str = "test", **caps: Any
    ) -> tuple[str, Principal]:
        async with self.services.db.transaction() as conn:
            account = await ensure_account(conn, name)
            issued = await issue_key(conn, account, mode="test" if mode == "test" else "live", **caps)
            if Decimal(credit) > 0:
                await top_up(conn, account, micros=micros_from_usd(credit), mode=issued.mode)
        principal = Principal(account.id, account.name, issued.id, issued.mode)
        return issued.secret, principal

    async def wait_terminal(self, path: str, key: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """Poll a native video until it ends (bounded; the worker runs in-process)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            body: dict[str, Any] = (await self.client.get(path, headers=auth(key))).json()
            if body.get("vidgate_status") in ("succeeded", "failed", "expired", "canceled"):
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{path} did not finish: {body}")
            await asyncio.sleep(0.05)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async for running in _gateway(settings, run_worker=True):
        yield running


@pytest.fixture
async def idle_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The app without its worker loop: tests step jobs by hand (``runtime.worker.drain``)."""
    async for running in _gateway(settings, run_worker=False):
        yield running


async def _gateway(settings: Settings, *, run_worker: bool) -> AsyncIterator[Gateway]:
    app = create_app(settings, run_worker=run_worker, env={})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Gateway(app.state.services, client, app.state.runtime)
