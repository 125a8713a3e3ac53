"""Micro-USD conversions at the wire edge (vidgate.money)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgate.money import format_usd, micros_from_usd, round_micros, usd


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("2.24", 2_240_000),
        (Decimal("0.326565"), 326_565),
        (0.1, 100_000),
        (0.756, 756_000),
        (3, 3_000_000),
        ("0.0000005", 1),  # half-up
        ("0.00000049", 0),
        ("-0.0000005", -1),  # half away from zero
    ],
)
def test_micros_from_usd(value: Decimal | str | int | float, micros: int) -> None:
    assert micros_from_usd(value) == micros


@pytest.mark.parametrize("value", ["ten dollars", "NaN", float("inf"), True])
def test_micros_from_usd_refuses_non_amounts(value: object) -> None:
    with pytest.raises(ValueError):
        micros_from_usd(value)  # type: ignore[arg-type]


def test_usd_is_exact() -> None:
    assert usd(2_240_000) == Decimal("2.24")
    assert usd(1_632_825) == Decimal("1.632825")
    assert usd(0) == 0
    assert str(usd(5_000_000)) == "5"


def test_round_micros_is_half_up() -> None:
    assert round_micros(Decimal("0.5")) == 1
    assert round_micros(Decimal("1.49")) == 1
    assert round_micros(Decimal("2.5")) == 3


@pytest.mark.parametrize(
    ("micros", "text"),
    [(2_240_000, "2.24"), (756_000, "0.756"), (5_000_000, "5.00"), (0, "0.00"), (1, "0.000001")],
)
def test_format_usd(micros: int, text: str) -> None:
    assert format_usd(micros) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_trip(micros: int) -> None:
    assert micros_from_usd(usd(micros)) == micros
    assert micros_from_usd(format_usd(micros)) == micros
