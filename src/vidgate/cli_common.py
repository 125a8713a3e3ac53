"""What every ``vidgate`` command shares: settings from options, amounts, the console."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vidgate.config import Settings
from vidgate.startup import load_settings

console = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (env VIDGATE_DATA_DIR).")]


def settings_from(data_dir: Path | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return load_settings(**values)


def usd_amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount in USD") from None
    if value < 0 or not value.is_finite():
        raise typer.BadParameter("amounts are positive")
    return value
