"""The ``vidgate`` command: serve, worker and migrate here; keys and accounts in
``cli_accounts``; models, docs, generate, providers and fake-upstream in ``cli_tools``;
routes in ``cli_routes``.

A mistake by the person at the keyboard (a bad setting, an unreachable database, a
busy port, an unknown account) is an ``OperatorError``: one line on stderr and exit
status 2; ``--debug`` (anywhere on the line) adds the traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any

import typer

from vidgate import __version__
from vidgate.cli_accounts import accounts_app, keys_app
from vidgate.cli_common import DataDir, console, settings_from
from vidgate.cli_reports import report
from vidgate.cli_routes import routes
from vidgate.cli_tools import docs, fake_upstream, generate, models, providers_app
from vidgate.logs import configure as configure_logging
from vidgate.startup import OperatorError

app = typer.Typer(
    no_args_is_help=True,
    help="vidgate: a self-hosted gateway for AI video generation.",
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(providers_app, name="providers")
for command in (models, docs, generate, report, routes):
    app.command()(command)
app.command("fake-upstream")(fake_upstream)


def _show_version(value: bool) -> None:
    if value:
        print(f"vidgate {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback behind an error (allowed anywhere).")
    ] = False,
) -> None:
    """vidgate: a self-hosted gateway for AI video generation."""
    # ``main`` takes --debug out of the arguments wherever it stands; it is declared
    # here so that ``vidgate --help`` lists it.


# ------------------------------------------------------------------- serve


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; run `vidgate worker` elsewhere.")
    ] = False,
    dialect_port: Annotated[
        list[str] | None,
        typer.Option(
            "--dialect-port",
            help="NAME=PORT: also serve dialect NAME at the root of PORT (repeatable; "
            "env VIDGATE_DIALECT_PORTS=apiframe=8003,thalam=8001).",
        ),
    ] = None,
) -> None:
    """Start the gateway: API, worker and playground in one process."""
    import uvicorn

    from vidgate.api.dialects import root_map
    from vidgate.api.dialects.roots import RootConfigError
    from vidgate.bootstrap import demo_key_path, first_run
    from vidgate.runtime.app import create_app
    from vidgate.runtime.roles import Role
    from vidgate.startup import bind_port, check_data_dir, check_files

    settings = settings_from(data_dir)
    if dialect_port:
        settings = settings.model_copy(
            update={"dialect_ports": ",".join([settings.dialect_ports, *dialect_port]).strip(",")}
        )
    try:
        roots = root_map(settings)
    except RootConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format)
    check_files(settings)
    check_data_dir(settings)
    # Busy ports are known before anything is printed. One server (one lifespan, one worker)
    # listens on the main port and on every dialect port.
    socks = [bind_port(host, p) for p in [port, *sorted(roots.by_port)]]
    sock = socks[0]
    try:
        demo = asyncio.run(first_run(settings))  # reaches the database, migrates
    except BaseException:
        for bound in socks:
            bound.close()
        raise
    role = Role.API if no_worker else Role.ALL
    base = settings.public_url or f"http://{_shown_host(host)}:{sock.getsockname()[1]}"
    lines = [
        f"vidgate {__version__}: {'API' if no_worker else 'API + worker'} on {base}"
        f"  (data in {settings.data_dir.resolve()})",
        f"  playground: {base}/    docs: {base}/docs    OpenAI base_url: {base}/v1",
    ]
    if demo is not None:
        lines.append(f"  demo account {demo.account_name!r}, test-mode key (test credit only):")
        lines.append(f"  {demo.secret}")
    elif demo_key_path(settings).exists():
        lines.append(f"  the demo test-mode key is in {demo_key_path(settings).resolve()}")
    for dialect_at, prefix in sorted(roots.by_port.items()):
        lines.append(f"  {prefix.strip('/')} at the root of http://{_shown_host(host)}:{dialect_at}")
    config = uvicorn.Config(
        create_app(settings, role=role),
        log_level="warning",
        log_config=None,  # our handler and format (text or JSON) for uvicorn's lines too
        access_log=False,  # vidgate's access layer logs each request
        timeout_graceful_shutdown=20,  # SIGTERM: stop accepting, drain in-flight requests, exit
    )
    _announcing_server(config, lambda: print("\n".join(lines), flush=True)).run(sockets=socks)


def _shown_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (naming the wildcard, not binding it)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _announcing_server(config: Any, on_listening: Callable[[], None]) -> Any:
    """uvicorn's server, calling ``on_listening`` once its socket accepts (prints the banner)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_listening()

    return Server(config)


@app.command()
def worker(
    data_dir: DataDir = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve /metrics, /healthz and /readyz on this port (host: VIDGATE_METRICS_HOST).",
        ),
    ] = None,
) -> None:
    """Run a worker process (no API): leases due jobs and drives them to the end."""
    from vidgate.runtime.ops import bind, serve_ops
    from vidgate.runtime.roles import Role
    from vidgate.runtime.services import build_runtime
    from vidgate.startup import preflight

    settings = settings_from(data_dir)
    configure_logging(settings.log_level, settings.log_format)
    try:
        sock = bind(settings.metrics_host, metrics_port) if metrics_port is not None else None
    except OSError as exc:
        console.print(
            f"[red]cannot listen on {settings.metrics_host}:{metrics_port} for metrics: {exc}[/red]"
        )
        raise typer.Exit(2) from None

    async def main() -> None:
        await preflight(settings)  # a start-up mistake is one line and exit 2, as for serve
        runtime = await build_runtime(settings, Role.WORKER)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, runtime.stop)
        runtime.start()
        metrics = None
        if sock is not None:
            stop = asyncio.Event()
            metrics = asyncio.create_task(serve_ops(runtime.ops, sock, stop=stop))
            host, port = sock.getsockname()[:2]
            print(f"  metrics: http://{host}:{port}/metrics", flush=True)
        print(f"vidgate worker {runtime.worker.owner} running", flush=True)
        try:
            await runtime.wait()
        finally:
            if metrics is not None:
                stop.set()
                await metrics
            await runtime.close()

    asyncio.run(main())


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Bring the database schema up to date (serve and worker also do this at start)."""
    from vidgate.startup import preflight
    from vidgate.store.engine import open_database
    from vidgate.store.migrate import migrate as run_migrations

    settings = settings_from(data_dir)

    async def main() -> None:
        await preflight(settings)
        db = open_database(settings)
        await run_migrations(db)
        await db.dispose()

    asyncio.run(main())
    print("schema is up to date")


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("VIDGATE_DEBUG") == "1"
    args = [arg for arg in args if arg != "--debug"]
    try:
        app(args=args, prog_name="vidgate")
    except OperatorError as exc:
        if debug:
            traceback.print_exc()
        print(f"vidgate: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
