"""``vidgate models``, ``docs``, ``generate``, ``providers check`` and ``fake-upstream``."""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vidgate.bootstrap import readable_usd
from vidgate.cli_common import DataDir, console, settings_from
from vidgate.money import micros_from_usd
from vidgate.startup import OperatorError

providers_app = typer.Typer(no_args_is_help=True, help="The configured upstream providers.")


def models(
    namespace: Annotated[str | None, typer.Option(help="Only this dialect's models.")] = None,
) -> None:
    """The model catalog: ids, durations, resolutions, prices and routes."""
    from vidgate.catalog.loader import load_catalog

    settings = settings_from()
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


def docs(
    table: Annotated[str, typer.Argument(help="providers | routes")],
) -> None:
    """Print a generated reference table (markdown), as embedded in the README."""
    from vidgate.catalog.loader import load_catalog
    from vidgate.docs import render

    if table not in ("providers", "routes"):
        raise typer.BadParameter("one of: providers, routes")
    print(render(table, load_catalog(settings_from().catalog)))


# ----------------------------------------------------------------- generate


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
    """One cheap call per enabled provider (per key of a key pool) that proves its credentials.

    No generation is bought. Exits 1 when any provider refused or could not be reached.
    """
    import httpx

    from vidgate.providers.base import UpstreamError
    from vidgate.worker.providers import ProviderPool

    settings = settings_from(data_dir)

    async def run() -> list[tuple[str, str, bool]]:
        results: list[tuple[str, str, bool]] = []
        async with httpx.AsyncClient(timeout=settings.upstream_timeout_s) as http:
            pool = ProviderPool(settings, http)
            try:
                for name in pool.enabled:
                    keys = pool.keys(name)
                    assert keys is not None
                    for key in keys.keys:  # each key of a pool: `fal#1`, `fal#2`, ...
                        try:
                            proved = await key.adapter.check()
                        except UpstreamError as exc:
                            results.append((key.label, f"{exc.code}: {exc.message}", False))
                        else:
                            outcome = "ok" if proved else "no cheap check for this upstream"
                            results.append((key.label, outcome, True))
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
