"""Reading what an upstream says a job cost, from the usage block of its answer.

A usage figure is informative, never essential: a field that is missing or not a
plain non-negative number gives None, and the job carries on under the catalog's
estimate (``vidgate.service.costs``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from vidgate.domain.job import ReportedCost

XAI_TICKS_PER_MICRO = 10_000  # docs.x.ai/developers/cost-tracking: 1 USD = 10^10 ticks


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def usd_ticks(value: object) -> ReportedCost | None:
    """xAI's ``usage.cost_in_usd_ticks``: the amount billed, in 1e-10 USD."""
    ticks = _number(value)
    if ticks is None:
        return None
    return ReportedCost(micros=int((ticks / XAI_TICKS_PER_MICRO).to_integral_value()))


def units(value: object, unit_name: str) -> ReportedCost | None:
    """A count in the upstream's own billing unit (Ark's tokens, DashScope's seconds)."""
    count = _number(value)
    return None if count is None else ReportedCost(units=count, unit_name=unit_name)
