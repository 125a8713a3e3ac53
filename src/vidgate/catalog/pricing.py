"""What a job costs: a quote before it runs, and the amount to capture when it ends.

Prices follow the entry's ``PriceRule`` (see ``vidgate.catalog.models``):

* ``flat``: the amount per job;
* ``per_clip``: the amount for a ``base_seconds`` clip, scaled linearly with the
  duration (capped at ``max_seconds``), as Thalam sells;
* ``per_second``: the amount times the duration, as Kyma sells.

A rule with ``variants`` takes its amount from the variant key built from
``variant_by`` (``"pro+audio"``, ``"8+silent"``...). Credit prices (Apiframe) are
rounded half-up to whole credits, then turned into USD at the rule's ``credit_usd``
(a caller may pass another value, e.g. to show a price list at a different rate).
All arithmetic is Decimal; the result is rounded half-up to whole micro-USD once.
The request is expected to be normalised already (``validation.normalize``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from vidgate.catalog.models import ModelSpec, PriceRule, RouteSpec
from vidgate.domain.request import GenerationRequest
from vidgate.errors import InvalidRequest, ModelUnavailable
from vidgate.money import MICROS_PER_USD, round_micros

_PARAM_OF = {
    "duration": "duration",
    "resolution": "resolution",
    "audio": "audio",
    "aspect_ratio": "aspect_ratio",
}


@dataclass(frozen=True, slots=True)
class QuoteLine:
    """One human-readable line of a quote and its share of the total."""

    label: str
    micros: int


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of one job in micro-USD, with how it was reached.

    ``credits`` is set for credit-priced models (the whole number of credits the
    seed dialect shows); ``variant`` is the variant key that set the amount.
    """

    micros: int
    lines: tuple[QuoteLine, ...]
    credits: int | None
    variant: str | None
    rule: str


def quote(spec: ModelSpec, req: GenerationRequest, *, credit_usd: Decimal | None = None) -> Quote:
    """The price of ``req`` on ``spec``; raises ModelUnavailable when there is none."""
    rule = spec.price
    if rule is None:
        raise ModelUnavailable(
            spec.unavailable_reason or f"{spec.id} has no price and cannot be ordered",
            param="model",
        )
    duration = _duration(spec, req)
    variant = variant_key(rule, spec, req, duration=duration)
    amount = _amount(rule, spec, variant)
    price, how = _apply_rule(rule, amount, _priced_duration(req, duration))
    head = f"{spec.id} [{variant}]" if variant else spec.id
    if rule.unit == "credit":
        credits = int(price.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        value = credit_usd if credit_usd is not None else rule.credit_usd
        micros = round_micros(credits * value * MICROS_PER_USD)
        line = QuoteLine(f"{head}: {how} = {credits} credits", micros)
        return Quote(micros, (line,), credits, variant, rule.rule)
    micros = round_micros(price * MICROS_PER_USD)
    return Quote(micros, (QuoteLine(f"{head}: {how}", micros),), None, variant, rule.rule)


@dataclass(frozen=True, slots=True)
class UpstreamCost:
    """What an upstream charges for one job: micro-USD, in its own units where it bills
    in credits ("12.5 credits"), and where the figure comes from."""

    micros: int
    units: str | None
    source: str


def upstream_cost(spec: ModelSpec, route: RouteSpec, req: GenerationRequest) -> UpstreamCost | None:
    """The catalog's estimate of what ``route``'s upstream charges for ``req``.

    Priced for the clip the upstream is asked to make: a route that makes only some
    lengths is asked for the shortest one at least as long as ordered. None when the
    route states no cost or has no price for this combination of inputs.
    """
    rule = route.cost
    if rule is None:
        return None
    fixed = {k: v for k, v in route.params.items() if k in rule.variant_by}
    if fixed:  # a route that always asks for one mode ("pro") is billed for that mode
        req = req.model_copy(update={"options": {**req.options, **fixed}})
    ordered = _duration(spec, req)
    made = min((d for d in route.durations if d >= ordered), default=ordered) if route.durations else ordered
    variant = variant_key(rule, spec, req, duration=made)
    if variant is not None and variant not in rule.variants and rule.amount is None:
        return None
    amount = _amount(rule, spec, variant)
    seconds = _priced_duration(req, made) if made == ordered else Decimal(made)
    price, _ = _apply_rule(rule, amount, seconds)
    if rule.unit == "credit":
        units = f"{price.normalize():f} {rule.unit_name}"
        return UpstreamCost(round_micros(price * rule.credit_usd * MICROS_PER_USD), units, rule.source)
    return UpstreamCost(round_micros(price * MICROS_PER_USD), None, rule.source)


def units_cost(rule: PriceRule | None, units: Decimal, unit_name: str | None) -> int | None:
    """Micro-USD for ``units`` an upstream reported in its own unit, when ``rule`` (the
    route's cost) prices that unit; None when it does not (the units are kept as told)."""
    if rule is None or rule.unit != "credit" or unit_name != rule.unit_name:
        return None
    return round_micros(units * rule.credit_usd * MICROS_PER_USD)


def settle_amount(
    spec: ModelSpec,
    req: GenerationRequest,
    *,
    delivered_duration_s: float | None,
    held_micros: int,
    credit_usd: Decimal | None = None,
) -> int:
    """The final charge for a finished job: never more than ``held_micros``.

    When the price depends on duration and the delivered clip is shorter than the
    one ordered, the price is recomputed for the delivered length, rounded up to a
    whole second and then up to the nearest duration the model sells.
    """
    charge = quote(spec, req, credit_usd=credit_usd).micros
    ordered = _duration(spec, req)
    if delivered_duration_s is not None and _depends_on_duration(spec.price):
        if not math.isfinite(delivered_duration_s):
            return max(0, min(charge, held_micros))
        billable = _billable_duration(spec, req, delivered_duration_s)
        if billable < ordered:
            shorter = req.model_copy(update={"duration_s": billable, "asked_duration_s": None})
            # No price for the shorter variant: keep the ordered price.
            with contextlib.suppress(InvalidRequest):
                charge = min(charge, quote(spec, shorter, credit_usd=credit_usd).micros)
    return max(0, min(charge, held_micros))


def variant_key(
    rule: PriceRule, spec: ModelSpec, req: GenerationRequest, *, duration: int | None = None
) -> str | None:
    """The key into ``rule.variants`` for this request, or None for a rule without them."""
    if not rule.variant_by:
        return None
    seconds = duration if duration is not None else _duration(spec, req)
    parts: list[str] = []
    for field in rule.variant_by:
        if field == "duration":
            parts.append(str(seconds))
        elif field == "audio":
            parts.append("audio" if _audio_on(spec, req) else "silent")
        elif field == "resolution":
            parts.append(req.resolution or spec.default_resolution or "")
        elif field == "aspect_ratio":
            parts.append(req.aspect_ratio or spec.default_aspect_ratio or "")
        else:
            value = req.options.get(field, spec.option_defaults.get(field, ""))
            parts.append(str(value))
    return "+".join(parts)


def depends_on_duration(spec: ModelSpec) -> bool:
    """Whether a shorter clip would cost less under this entry's price rule."""
    return _depends_on_duration(spec.price)


def _depends_on_duration(rule: PriceRule | None) -> bool:
    if rule is None:
        return False
    return rule.rule in ("per_clip", "per_second") or "duration" in rule.variant_by


def _duration(spec: ModelSpec, req: GenerationRequest) -> int:
    return req.duration_s if req.duration_s is not None else spec.default_duration


def _priced_duration(req: GenerationRequest, whole: int) -> Decimal:
    """The seconds a duration-priced rule charges: the asked length when it is a
    fraction no longer than the whole seconds made (Thalam's 5.5 s), else the whole."""
    asked = req.asked_duration_s
    if asked is not None and 0 < asked <= whole:
        return asked
    return Decimal(whole)


def _audio_on(spec: ModelSpec, req: GenerationRequest) -> bool:
    if req.audio is not None:
        return req.audio
    return spec.audio == "always" or (spec.audio == "optional" and spec.default_audio)


def _amount(rule: PriceRule, spec: ModelSpec, variant: str | None) -> Decimal:
    if variant is not None and variant in rule.variants:
        return rule.variants[variant]
    if rule.amount is not None:
        return rule.amount
    field = rule.variant_by[0] if rule.variant_by else "model"
    param = _PARAM_OF.get(field, f"options.{field}")
    priced = ", ".join(sorted(rule.variants))
    raise InvalidRequest(
        f"{spec.id} has no price for {' + '.join(rule.variant_by)} = {variant!r}; "
        f"priced combinations: {priced}",
        param=param,
    )


def _apply_rule(rule: PriceRule, amount: Decimal, duration: Decimal) -> tuple[Decimal, str]:
    """The price in the rule's unit, and how it was reached (for the quote line)."""
    each = _in_unit(rule, amount)
    if rule.rule == "flat":
        return amount, f"{each} per job"
    if rule.rule == "per_second":
        return amount * duration, f"{duration} s x {each} per second"
    seconds = min(duration, Decimal(rule.max_seconds)) if rule.max_seconds else duration
    price = amount * seconds / rule.base_seconds
    return price, f"{seconds} s at {each} per {rule.base_seconds} s clip"


def _billable_duration(spec: ModelSpec, req: GenerationRequest, delivered: float) -> int:
    """Whole seconds delivered, rounded up, then up to a duration the model sells."""
    seconds = max(1, math.ceil(delivered))
    allowed = spec.durations
    if req.resolution is not None and req.resolution in spec.durations_by_resolution:
        allowed = spec.durations_by_resolution[req.resolution]
    sellable = [d for d in allowed if d >= seconds]
    return min(sellable) if sellable else seconds


def _in_unit(rule: PriceRule, amount: Decimal) -> str:
    text = f"{amount.normalize():f}"
    return f"{text} credits" if rule.unit == "credit" else f"${text}"
