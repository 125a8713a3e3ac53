"""The ``vidgate`` command: serve, worker, keys, accounts, models, generate, fake-upstream.

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
import time
import traceback
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vidgate import __version__
from vidgate.config import Settings
from vidgate.logs import configure as configure_logging
from vidgate.startup import OperatorError, load_settings

app = typer.Typer(
    no_args_is_help=True,
    help="vidgate: a self-hosted gateway for AI video generation.",
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(no_args_is_help=True, help="Issue and revoke API keys.")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts and their balances.")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
providers_app = typer.Typer(no_args_is_help=True, help="The configured upstream providers.")
app.add_typer(providers_app, name="providers")
console = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (env VIDGATE_DATA_DIR).")]


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


def _settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return load_settings(**values)


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount in USD") from None
    if value < 0 or not value.is_finite():
        raise typer.BadParameter("amounts are positive")
    return value


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

    settings = _settings(data_dir)
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

    settings = _settings(data_dir)
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

    settings = _settings(data_dir)

    async def main() -> None:
        await preflight(settings)
        db = open_database(settings)
        await run_migrations(db)
        await db.dispose()

    asyncio.run(main())
    print("schema is up to date")


# -------------------------------------------------------------- keys/accounts


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account name (created if new).")],
    credit: Annotated[
        str | None, typer.Option(help="Add this much USD to the key's balance (test or live).")
    ] = None,
    test: Annotated[
        bool, typer.Option("--test", help="A test-mode key: every job runs on the simulator.")
    ] = False,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", help="Requests per minute for the account.")
    ] = None,
    daily_cap: Annotated[str | None, typer.Option("--daily-cap", help="Spend cap per UTC day, USD.")] = None,
    total_cap: Annotated[str | None, typer.Option("--total-cap", help="Total spend cap, USD.")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Issue an API key. The secret is printed once, alone on the last line."""
    from vidgate.bootstrap import create_key

    settings = _settings(data_dir)
    issued = asyncio.run(
        create_key(
            settings,
            account=account,
            mode="test" if test else "live",
            name=name,
            credit=_usd(credit) if credit else None,
            rate_limit=rate_limit,
            daily_cap=_usd(daily_cap) if daily_cap else None,
            total_cap=_usd(total_cap) if total_cap else None,
        )
    )
    print(f"{issued.mode} key {issued.id} for account {issued.account_name!r} ({issued.account_id})")
    print(issued.secret)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key by id (``key_...``); it stops working at once."""
    from vidgate.bootstrap import revoke

    asyncio.run(revoke(_settings(data_dir), key_id))
    print(f"revoked {key_id}")


@accounts_app.command("topup")
def accounts_topup(
    account: Annotated[str, typer.Option(help="Account name.")],
    amount: Annotated[str, typer.Option(help="USD to add.")],
    test: Annotated[
        bool, typer.Option("--test", help="Top up the test balance instead of the live one.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Add money to an account's live (or test) balance."""
    from vidgate.bootstrap import topup

    balance = asyncio.run(
        topup(
            _settings(data_dir),
            account=account,
            amount=_usd(amount),
            mode="test" if test else "live",
        )
    )
    print(f"{account}: {'test' if test else 'live'} balance is now {balance}")


@accounts_app.command("show")
def accounts_show(account: str, data_dir: DataDir = None) -> None:
    """Balances of an account (both modes) and its keys."""
    from vidgate.bootstrap import describe

    for line in asyncio.run(describe(_settings(data_dir), account)):
        print(line)


# ------------------------------------------------------------------ catalog


@app.command()
def models(
    namespace: Annotated[str | None, typer.Option(help="Only this dialect's models.")] = None,
) -> None:
    """The model catalog: ids, durations, resolutions, prices and routes."""
    from vidgate.catalog.loader import load_catalog

    settings = _settings()
    catalog = load_catalog(settings.catalog)
    table = Table(title="vidgate model catalog (prices in USD)")
    for column in ("id", "namespace", "modes", "durations (s)", "resolutions", "price", "routes"):
        table.add_column(column, overflow="fold")
    for spec in catalog.in_namespace(namespace) if namespace else catalog.all():
        durations = spec.durations
        shown = f"{durations[0]}-{durations[-1]}" if len(durations) > 4 else ",".join(map(str, durations))
        price = "not orderable" if not spec.orderable else _price_text(spec)
        table.add_row(
            spec.id,
            spec.namespace,
            "/".join(spec.modes),
            shown,
            ",".join(spec.resolutions) or "-",
            price,
            ",".join(r.provider for r in spec.routes) or "-",
        )
    Console(width=200).print(table)


def _price_text(spec: Any) -> str:
    """``$0.50 per second``, ``$0.30–$0.60 per video (30–60 credits)``: a price as people read one."""
    from vidgate.bootstrap import readable_usd
    from vidgate.money import micros_from_usd

    rule = spec.price
    amounts = sorted(rule.variants.values()) if rule.variants else [rule.amount]
    low, high = amounts[0], amounts[-1]
    rate = rule.credit_usd if rule.unit == "credit" else Decimal(1)

    def dollars(amount: Decimal) -> str:
        return readable_usd(micros_from_usd(amount * rate))

    span = dollars(low) if low == high else f"{dollars(low)}–{dollars(high)}"
    units = {"flat": "per video", "per_clip": f"per {rule.base_seconds} s", "per_second": "per second"}
    per = units[rule.rule]
    if rule.unit == "credit":
        credits = f"{low:f}" if low == high else f"{low:f}–{high:f}"
        return f"{span} {per} ({credits} credit{'' if credits == '1' else 's'})"
    return f"{span} {per}"


@app.command("docs")
def docs(
    table: Annotated[str, typer.Argument(help="providers | routes")],
) -> None:
    """Print a generated reference table (markdown), as embedded in the README."""
    from vidgate.catalog.loader import load_catalog
    from vidgate.docs import render

    if table not in ("providers", "routes"):
        raise typer.BadParameter("one of: providers, routes")
    print(render(table, load_catalog(_settings().catalog)))


# ----------------------------------------------------------------- generate


@app.command()
def generate(
    model: Annotated[str, typer.Option(help="Catalog model id.")],
    prompt: Annotated[str, typer.Option(help="What to generate.")],
    duration: Annotated[int | None, typer.Option(help="Seconds.")] = None,
    resolution: Annotated[str | None, typer.Option(help="e.g. 720p")] = None,
    aspect_ratio: Annotated[str | None, typer.Option("--aspect-ratio", help="e.g. 16:9")] = None,
    image_url: Annotated[str | None, typer.Option("--image-url", help="First frame (i2v models).")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to save the MP4.")] = Path("out.mp4"),
) -> None:
    """Generate one video through a running gateway (VIDGATE_API_KEY, VIDGATE_BASE_URL)."""
    import httpx

    from vidgate.client import Client, ClientError

    key = os.environ.get("VIDGATE_API_KEY")
    if not key:
        raise OperatorError("set VIDGATE_API_KEY to your key (`vidgate keys create` issues one)")
    base = os.environ.get("VIDGATE_BASE_URL", "http://127.0.0.1:8000")
    try:
        with Client(base, key) as client:
            _generate(
                client,
                output,
                model=model,
                prompt=prompt,
                duration=duration,
                resolution=resolution,
                aspect_ratio=aspect_ratio,
                image_url=image_url,
            )
    except ClientError as exc:
        raise OperatorError(f"vidgate at {base} refused: {exc}") from exc
    except httpx.TransportError as exc:
        raise OperatorError(
            f"cannot reach vidgate at {base} ({type(exc).__name__}: {exc or 'no answer'}); "
            "start it with `vidgate serve` or set VIDGATE_BASE_URL"
        ) from exc


def _generate(client: Any, output: Path, **fields: Any) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    video = client.create(**{k: v for k, v in fields.items() if v is not None})
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{video['id']} queued", total=100)
        while video["status"] in ("queued", "in_progress"):
            time.sleep(max(0.2, client.last_poll_after_s))
            video = client.retrieve(video["id"])
            progress.update(
                task,
                completed=video["progress"],
                description=f"{video['id']} {video['vidgate_status']}",
            )
        progress.update(task, completed=100 if video["status"] == "completed" else video["progress"])
    if video["status"] != "completed":
        error = video.get("error") or {}
        console.print(f"[red]{video['vidgate_status']}: {error.get('message', 'no reason given')}[/red]")
        console.print(f"refunded ${video['cost']['refunded']}")
        raise typer.Exit(1)
    size = client.download(video["id"], output)
    console.print(f"saved {output} ({size} bytes, charged ${video['cost']['charged']})")


# ---------------------------------------------------------------- providers


@providers_app.command("check")
def providers_check(data_dir: DataDir = None) -> None:
    """One cheap call per enabled provider that proves its credentials and base URL.

    No generation is bought. Exits 1 when any provider refused or could not be reached.
    """
    import httpx

    from vidgate.providers.base import UpstreamError
    from vidgate.worker.providers import ProviderPool

    settings = _settings(data_dir)

    async def run() -> list[tuple[str, str, bool]]:
        results: list[tuple[str, str, bool]] = []
        async with httpx.AsyncClient(timeout=settings.upstream_timeout_s) as http:
            pool = ProviderPool(settings, http)
            try:
                for name in pool.enabled:
                    adapter = pool.adapter(name)
                    assert adapter is not None
                    try:
                        proved = await adapter.check()
                    except UpstreamError as exc:
                        results.append((name, f"{exc.code}: {exc.message}", False))
                    else:
                        results.append((name, "ok" if proved else "no cheap check for this upstream", True))
            finally:
                await pool.aclose()
        return results

    results = asyncio.run(run())
    if not results:
        console.print("no provider is configured (set VIDGATE_<NAME>_API_KEY)")
        return
    table = Table("provider", "result")
    for name, outcome, good in results:
        table.add_row(name, outcome if good else f"[red]{outcome}[/red]")
    Console().print(table)
    if not all(good for _, _, good in results):
        raise typer.Exit(1)


# ------------------------------------------------------------ fake upstream


@app.command("fake-upstream")
def fake_upstream(
    name: Annotated[str, typer.Argument(help="Provider protocol: fal, replicate, kling, ...")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    api_key: Annotated[str, typer.Option("--api-key", help="The key the fake accepts.")] = "test-key",
    latency: Annotated[float, typer.Option(help="Seconds from submit to done.")] = 2.0,
    chaos: Annotated[
        str,
        typer.Option(help='Random faults per API call, e.g. "5xx=0.2,429=0.05,slow=0.1,malformed=0.05".'),
    ] = "",
    slow_s: Annotated[float, typer.Option("--slow-s", help="How long a 'slow' answer is held back.")] = 40.0,
    seed: Annotated[int | None, typer.Option(help="Seed for the chaos draws (repeatable runs).")] = None,
    callback_mode: Annotated[
        list[str] | None,
        typer.Option("--callback-mode", help="twice, out_of_order, late or unknown_id (repeatable)."),
    ] = None,
) -> None:
    """Serve a fake upstream that speaks NAME's real protocol (for tests and benchmarks)."""
    import uvicorn

    from vidgate.testing.chaos import Chaos
    from vidgate.testing.fake import CALLBACK_MODES, FakeScript
    from vidgate.testing.fakes import FAKES, fake_class

    if name not in FAKES:
        console.print(f"[red]unknown provider {name!r}; one of: {', '.join(sorted(FAKES))}[/red]")
        raise typer.Exit(2)
    modes = list(callback_mode or [])
    if unknown := set(modes) - CALLBACK_MODES:
        console.print(f"[red]unknown callback mode(s): {', '.join(sorted(unknown))}[/red]")
        raise typer.Exit(2)
    try:
        faults = Chaos.parse(chaos, slow_s=slow_s)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    script = FakeScript(latency_s=latency, callback_modes=modes)
    fake = fake_class(name)(api_key=api_key, script=script, chaos=faults, seed=seed)
    fake.base_url = f"http://127.0.0.1:{port}"
    print(
        f"fake {name} upstream on {fake.base_url} (key {api_key!r}); script it via POST /__fake__/script, "
        "chaos via POST /__fake__/chaos, submissions at GET /__fake/submissions",
        flush=True,
    )
    uvicorn.run(fake.app(), host="127.0.0.1", port=port, log_level="warning")


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
