"""The services under the gateway: S3 (moto, as its own process), a scratch PostgreSQL
database on the machine's server, and a private PostgreSQL cluster that a scenario may
stop and start (never the shared server)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import boto3
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.fault.procs import Child, free_port, http_ok, wait_until
from vidgate.store.engine import Database
from vidgate.store.migrate import migrate

S3_KEYS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


# ------------------------------------------------------------------------- S3


def start_moto(log_dir: Path) -> tuple[Child, str]:
    """``python -m moto.server`` on a free loopback port; returns the child and its endpoint."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    child = Child(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        log_dir=log_dir,
        ready=http_ok(f"{endpoint}/moto-api/"),
    )
    child.start(timeout_s=60)
    return child, endpoint


def create_bucket(endpoint: str) -> str:
    name = f"vidgate-fault-{uuid.uuid4().hex[:10]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEYS["access_key_id"],
        aws_secret_access_key=S3_KEYS["secret_access_key"],
        region_name=S3_KEYS["region"],
    )
    client.create_bucket(Bucket=name)
    return name


def storage_url(endpoint: str, bucket: str) -> str:
    keys = "&".join(f"{k}={v}" for k, v in S3_KEYS.items())
    return f"s3://{bucket}/media?endpoint={endpoint}&{keys}"


# ----------------------------------------------------------------- PostgreSQL


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _execute(admin_url: str, statement: str) -> None:
    db = Database(with_database(admin_url, "postgres"), null_pool=True)
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await db.dispose()


def create_database(server_url: str) -> str:
    """A fresh, migrated database on ``server_url``'s server; returns its URL."""
    name = f"vg_fault_{uuid.uuid4().hex[:10]}"

    async def setup() -> None:
        await _execute(server_url, f'CREATE DATABASE "{name}"')
        db = Database(with_database(server_url, name), null_pool=True)
        try:
            await migrate(db)
        finally:
            await db.dispose()

    asyncio.run(setup())
    return with_database(server_url, name)


def drop_database(url: str) -> None:
    name = make_url(url).database
    asyncio.run(_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` that has initdb and pg_ctl, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for folder in reversed(found):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class PrivateCluster:
    """A throw-away PostgreSQL cluster owned by the ``postgres`` OS user, trust auth,
    on a free loopback port, in a temp folder; ``stop()``/``start()`` it at will."""

    def __init__(self, bin_dir: Path, log_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        self.port = free_port()
        # pytest's tmp dirs are private to root; the cluster lives where postgres may write.
        self.root = Path(tempfile.mkdtemp(prefix="vidgate-fault-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
            " -c fsync=off -c max_connections=200"
        )
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        except subprocess.SubprocessError:
            pass
        with contextlib.suppress(OSError):
            (self.log_dir / "postgres.log").write_bytes(self.log.read_bytes())
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_accepting(self, timeout_s: float = 30) -> None:
        import socket

        def accepting() -> bool:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait_until("private PostgreSQL accepting", accepting, timeout_s=timeout_s)
