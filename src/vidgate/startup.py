"""Start-up checks: every operator mistake becomes one line that says what is wrong and how
to fix it, before anything is printed or served.

``OperatorError`` is that line. The CLI prints it and exits with status 2 (with the
traceback only under ``--debug``). The checks run in the order a person fixes things:
settings, files, the data folder, the database, the port. Nothing here starts a
service; ``vidgate serve`` binds the port itself (``bind_port``) so that a busy port is
known before the banner, and hands the bound socket to uvicorn.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from vidgate.config import Settings, config_file

SUPPORTED_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")
DATABASE_TIMEOUT_S = 10.0


class OperatorError(Exception):
    """A mistake in how vidgate was started or called (not a bug): one line for a person."""


def load_settings(**values: Any) -> Settings:
    """``Settings`` from the environment plus ``values``; a bad value is an ``OperatorError``."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(p) for p in first["loc"]).upper()
        raise OperatorError(
            f"the setting VIDGATE_{name} is not valid: {first['msg']} (got {first.get('input')!r})"
        ) from exc


def check_files(settings: Settings) -> None:
    """The config file, an operator catalog and the storage URL can all be read."""
    from vidgate.catalog.loader import load_catalog
    from vidgate.media.backends import storage_from_url

    try:
        config_file(settings.config)
    except SystemExit as exc:  # config_file's own clear message
        raise OperatorError(f"{exc.code}; fix the file or point VIDGATE_CONFIG at another") from exc
    try:
        load_catalog(settings.catalog)
    except (OSError, ValueError) as exc:
        raise OperatorError(
            f"cannot load the catalog file {settings.catalog}: {_reason(exc)}; "
            "fix it or unset VIDGATE_CATALOG"
        ) from exc
    try:
        storage_from_url(settings.storage_url, data_dir=settings.data_dir)
    except (OSError, ValueError) as exc:
        raise OperatorError(f"VIDGATE_STORAGE_URL is not usable: {_reason(exc)}") from exc


def check_data_dir(settings: Settings) -> None:
    """The data folder exists (it is made if not) and this user can write in it."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".vidgate-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OperatorError(
            f"cannot write to the data dir {path.absolute()}: {_reason(exc)}; make it writable "
            "for this user or choose another with --data-dir (VIDGATE_DATA_DIR)"
        ) from exc


def database_url(settings: Settings) -> str:
    """The database URL, checked for a driver vidgate speaks (``postgresql://`` means asyncpg)."""
    url = settings.resolved_database_url
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise OperatorError(
            f"VIDGATE_DATABASE_URL is not a database URL ({url!r}); "
            "write postgresql://user:password@host:5432/dbname"
        ) from exc
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise OperatorError(
            f"VIDGATE_DATABASE_URL uses {parsed.drivername!r}, which vidgate cannot use; "
            "write postgresql://user:password@host:5432/dbname (asyncpg) or leave it unset for SQLite"
        )
    return url


async def check_database(settings: Settings) -> None:
    """One round trip to the database, bounded in time."""
    from vidgate.store.engine import Database

    url = database_url(settings)
    shown = make_url(url).render_as_string(hide_password=True)
    db = Database(url, null_pool=True)
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S), db.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except TimeoutError as exc:
        raise OperatorError(
            f"the database at {shown} did not answer within {DATABASE_TIMEOUT_S:.0f} s; "
            "check VIDGATE_DATABASE_URL and that the server is running"
        ) from exc
    except Exception as exc:  # any driver's failure to connect is the operator's to fix
        raise OperatorError(
            f"cannot use the database at {shown}: {_reason(exc)}; check VIDGATE_DATABASE_URL "
            "and that the server is running"
        ) from exc
    finally:
        await db.dispose()


async def preflight(settings: Settings) -> None:
    """Everything a process checks before it starts: files, data folder, database."""
    check_files(settings)
    check_data_dir(settings)
    await check_database(settings)


def bind_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or an ``OperatorError`` saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise OperatorError(
            f"cannot listen on {host!r}: {exc.strerror}; pass --host 127.0.0.1 or 0.0.0.0"
        ) from exc
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OperatorError(
                f"port {port} on {host} is already in use; "
                "stop the other process or choose another with --port"
            ) from exc
        if exc.errno == errno.EACCES:
            raise OperatorError(
                f"not allowed to listen on port {port}; "
                "use a port above 1023 or run with the right to bind it"
            ) from exc
        raise OperatorError(f"cannot listen on {host}:{port}: {_reason(exc)}") from exc
    sock.set_inheritable(True)
    return sock


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
