"""``/readyz`` while the database goes down and comes back, with no restart of the app.

The database is a private PostgreSQL cluster this test makes, starts and stops
itself (``initdb``/``pg_ctl``, as the ``postgres`` user when run as root), in a
temporary folder on a free port: the machine's shared server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from vidgate.config import Settings
from vidgate.runtime.app import create_app
from vidgate.runtime.roles import Role
from vidgate.testing.server import free_port

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


@dataclass
class PrivatePostgres:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        command = [str(Path(BIN[-1]) / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(
            "pg_ctl",
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.folder / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not BIN or (shutil.which("runuser") is None and os.geteuid() == 0):
        pytest.skip("no PostgreSQL server binaries on this machine")
    folder = Path(tempfile.mkdtemp(prefix="vidgate-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = PrivatePostgres(folder, free_port())
    try:
        server.run("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_readyz_names_the_database_while_it_is_down_and_recovers_without_restart(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=private_postgres.url, secret_key="x")
    app = create_app(settings, role=Role.API, env={})
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        up = await client.get("/readyz")
        assert up.status_code == 200, up.text

        await asyncio.to_thread(private_postgres.stop)
        down = await client.get("/readyz")
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["failed"] == ["database"]
        assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"]
        assert body["checks"]["database"]["ms"] < 2500  # each check is bounded (~2 s)
        assert body["checks"]["storage"]["ok"] is True
        assert (await client.get("/healthz")).status_code == 200  # alive, touches nothing
        gauges = app.state.runtime.ops.gauges
        assert not await gauges.refresh()  # what the background timer does next: it fails
        scrape = await client.get("/metrics")  # and the scrape still answers, saying so
        assert scrape.status_code == 200 and "vidgate_store_snapshot_ok 0.0" in scrape.text

        await asyncio.to_thread(private_postgres.start)
        again = await client.get("/readyz")
        assert again.status_code == 200, again.text
        assert again.json()["checks"]["database"]["ok"] is True
