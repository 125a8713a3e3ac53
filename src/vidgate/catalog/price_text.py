"""A price rule as people read one: ``$0.07 per second``, ``$0.30–$0.60 per video (30–60 credits)``."""

from __future__ import annotations

from decimal import Decimal

from vidgate.catalog.models import PriceRule
from vidgate.money import format_usd, micros_from_usd


def rule_text(rule: PriceRule) -> str:
    """The rule's amount (or the span of its variants) and what it is charged per."""
    amounts = sorted(rule.variants.values()) if rule.variants else [rule.amount or Decimal(0)]
    low, high = amounts[0], amounts[-1]
    rate = rule.credit_usd if rule.unit == "credit" else Decimal(1)

    def dollars(amount: Decimal) -> str:
        return "$" + format_usd(micros_from_usd(amount * rate))

    span = dollars(low) if low == high else f"{dollars(low)}–{dollars(high)}"
    per = {"flat": "per video", "per_clip": f"per {rule.base_seconds} s", "per_second": "per second"}[
        rule.rule
    ]
    if rule.unit == "credit":
        units = f"{low:f}" if low == high else f"{low:f}–{high:f}"
        return f"{span} {per} ({units} {rule.unit_name})"
    return f"{span} {per}"
