"""Money as a person reads it: balances in cents, small prices to a hundredth of a cent,
never the six decimals of a micro-USD; ``vidgate models`` prices read as prices."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vidgate.bootstrap import readable_usd
from vidgate.catalog.loader import load_catalog
from vidgate.cli_tools import _price_text


@pytest.mark.parametrize(
    ("micros", "shown"),
    [
        (0, "$0.00"),
        (5_000_000, "$5.00"),
        (24_326_565, "$24.33"),
        (123_456_789_000, "$123,456.79"),
        (756_000, "$0.756"),
        (94_500, "$0.0945"),
        (409_590, "$0.4096"),
        (10_000, "$0.01"),
    ],
)
def test_readable_usd(micros: int, shown: str) -> None:
    assert readable_usd(micros) == shown


def test_catalog_prices_read_as_prices() -> None:
    catalog = load_catalog()
    texts = {spec.id: _price_text(spec) for spec in catalog.all() if spec.orderable}
    assert texts["hailuo-02"] == "$0.03–$0.06 per video (3–6 credits)"
    for model_id, text in texts.items():
        assert text.startswith("$"), (model_id, text)
        assert " per " in text, (model_id, text)
        number = text.split()[0].split("–")[0].lstrip("$").replace(",", "")
        assert len(number.partition(".")[2]) <= 4, (model_id, text)


def test_vidgate_models_shows_prices() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    done = subprocess.run(
        [sys.executable, "-m", "vidgate", "models", "--namespace", "kyma"],
        env={**env, "COLUMNS": "220"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "per second" in done.stdout
    assert "credits" not in done.stdout  # Kyma sells in USD
