"""Apiframe's public catalog entry for one model: ``GET /v2/models?modality=video``.

``costMin`` and ``costMax`` are whole credits over every combination the model
sells (durations, resolutions, audio, enumerated options), priced by the catalog's
own rule at the entry's credit value, so they follow an operator's price changes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from vidgate.catalog.models import DEFAULT_CREDIT_USD, ModelSpec
from vidgate.catalog.pricing import quote
from vidgate.domain.request import GenerationRequest
from vidgate.errors import GatewayError
from vidgate.money import MICROS_PER_USD

_PRICING_MODE = {"flat": "flat", "per_second": "per-second", "per_clip": "per-second"}


def credit_value(spec: ModelSpec | None) -> Decimal:
    """USD per credit for a model's prices (the catalog's fact; Apiframe's $0.01 otherwise)."""
    return spec.price.credit_usd if spec is not None and spec.price is not None else DEFAULT_CREDIT_USD


def model_entry(spec: ModelSpec) -> dict[str, Any]:
    low, high = cost_range(spec, credit_value(spec))
    rule = spec.price.rule if spec.price else "flat"
    return {
        "id": spec.name,
        "label": spec.label,
        "modality": "video",
        "description": spec.description,
        "costMin": low,
        "costMax": high,
        "pricingMode": spec.dialect.get("pricing_mode", _PRICING_MODE[rule]),
    }


def cost_range(spec: ModelSpec, credit_usd: Decimal) -> tuple[int | None, int | None]:
    """The cheapest and dearest job in whole credits (None, None when nothing is priced)."""
    costs: list[int] = []
    for req in _combinations(spec):
        with contextlib.suppress(GatewayError):
            price = quote(spec, req, credit_usd=credit_usd)
            if price.credits is not None:
                costs.append(price.credits)
            else:
                credits = Decimal(price.micros) / (credit_usd * MICROS_PER_USD)
                costs.append(int(credits.quantize(Decimal(1), rounding=ROUND_HALF_UP)))
    return (min(costs), max(costs)) if costs else (None, None)


def _combinations(spec: ModelSpec) -> Iterator[GenerationRequest]:
    resolutions: list[str | None] = list(spec.resolutions) or [None]
    audio = [False, True] if spec.audio == "optional" else [spec.audio == "always"]
    names = sorted(spec.options)
    for resolution in resolutions:
        durations = spec.durations_by_resolution.get(resolution or "", spec.durations)
        for sound, choices in itertools.product(audio, itertools.product(*(spec.options[n] for n in names))):
            for seconds in durations:
                yield GenerationRequest(
                    model=spec.id,
                    duration_s=seconds,
                    resolution=resolution,
                    audio=sound,
                    options=dict(zip(names, choices, strict=True)),
                )
