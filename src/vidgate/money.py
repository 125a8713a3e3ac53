"""Money as integers of micro-USD, and the conversions at the wire edge.

Inside vidgate every amount is an ``int`` of micro-USD (1e-6 USD): ledger entries,
holds, quotes. Decimals appear only where a number crosses a boundary (a dialect's
JSON, a price table in TOML, a message for a person), and these helpers are the
only way across. Rounding is half-up, to the nearest whole micro-USD.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000
_ONE = Decimal(1)
_CENT = Decimal("0.01")


def usd(micros: int) -> Decimal:
    """The USD amount of ``micros`` as an exact Decimal (``1_500_000`` -> ``1.5``)."""
    return Decimal(micros).scaleb(-6).normalize() if micros else Decimal(0)


def round_micros(value: Decimal) -> int:
    """A Decimal amount of micro-USD rounded half-up to a whole micro-USD."""
    return int(value.quantize(_ONE, rounding=ROUND_HALF_UP))


def micros_from_usd(value: Decimal | str | int | float) -> int:
    """Whole micro-USD for a USD amount, rounded half-up.

    Floats are read through their shortest decimal form (``0.1`` is ten cents, not
    the binary approximation). Raises ValueError for text that is not a number and
    for infinities or NaN.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount of money")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of USD: {value!r}") from exc
    if not amount.is_finite():
        raise ValueError(f"not a finite amount of USD: {value!r}")
    return round_micros(amount * MICROS_PER_USD)


def format_usd(micros: int) -> str:
    """USD for people, without the dollar sign: at least cents, never a lost micro.

    ``2_240_000`` -> ``"2.24"``, ``756_000`` -> ``"0.756"``, ``5_000_000`` -> ``"5.00"``.
    """
    amount = usd(micros)
    if amount == amount.quantize(_CENT):
        return f"{amount.quantize(_CENT):f}"
    return f"{amount:f}"
