"""Prices: every example the seed documents gives, reproduced to the micro-USD."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.catalog.conftest import request_for
from vidgate.catalog.loader import Catalog, load_catalog
from vidgate.catalog.models import ModelSpec, PriceRule
from vidgate.catalog.pricing import Quote, depends_on_duration, quote, settle_amount
from vidgate.catalog.validation import normalize
from vidgate.errors import InvalidRequest, ModelUnavailable


def priced(catalog: Catalog, model_id: str, **fields: Any) -> Quote:
    spec = catalog.get(model_id)
    return quote(spec, normalize(spec, request_for(spec, **fields)))


# --- Thalam: per 5 s clip, linear, capped at 30 s (seed-dialects 1.7, test case 10) ---


def test_thalam_ten_second_kling_is_twice_the_base(catalog: Catalog) -> None:
    result = priced(catalog, "kuaishou/kling-v3.0-pro-t2v", duration_s=10)
    assert result.micros == 2_240_000
    assert result.rule == "per_clip"
    assert result.credits is None
    assert result.lines[0].micros == result.micros
    assert "10 s at $1.12 per 5 s clip" in result.lines[0].label


def test_thalam_thirty_seconds_is_six_times_the_base(catalog: Catalog) -> None:
    assert priced(catalog, "kuaishou/kling-v3.0-pro-t2v", duration_s=30).micros == 6 * 1_120_000
    assert priced(catalog, "alibaba/wan-2.5-t2v-preview", duration_s=30).micros == 3_000_000


@pytest.mark.parametrize(
    ("model_id", "base"),
    [
        ("alibaba/wan-2.5-t2v-preview", 500_000),
        ("alibaba/wan2.6-t2v", 500_000),
        ("bytedance/seedance-1.5-pro-t2v", 270_000),
        ("bytedance/seedance-1.5-pro-i2v", 270_000),
        ("kuaishou/kling-v3.0-pro-t2v", 1_120_000),
        ("kuaishou/kling-v3.0-pro-i2v", 1_120_000),
        ("kuaishou/kling-v2.6-pro-motion-control", 350_000),
        ("pixverse/pixverse-v4.5-t2v", 350_000),
        ("shengshu/vidu-q3-pro-t2v", 670_000),
        ("tencent/hunyuan-video-fast", 300_000),
    ],
)
def test_thalam_five_second_prices_are_the_table(catalog: Catalog, model_id: str, base: int) -> None:
    assert priced(catalog, model_id, duration_s=5).micros == base


def test_thalam_one_second_is_a_fifth_of_the_base(catalog: Catalog) -> None:
    assert priced(catalog, "bytedance/seedance-1.5-pro-t2v", duration_s=1).micros == 54_000
    assert priced(catalog, "shengshu/vidu-q3-pro-t2v", duration_s=7).micros == 938_000


def test_per_clip_is_capped_at_max_seconds(catalog: Catalog) -> None:
    spec = catalog.get("kuaishou/kling-v3.0-pro-t2v")
    raw = request_for(spec, duration_s=45)  # not normalised: quote still caps it
    assert quote(spec, raw).micros == 6_720_000


def test_thalam_coming_soon_has_no_price(catalog: Catalog) -> None:
    spec = catalog.get("minimax/hailuo-02")
    with pytest.raises(ModelUnavailable, match="coming soon"):
        quote(spec, request_for(spec))


# --- Kyma: per second, 1.35x markup included (seed-dialects 5.7) ---


@pytest.mark.parametrize(
    ("model_id", "five_seconds"),
    [
        ("kling-2.5-pro", 472_500),
        ("kling-3-pro", 756_000),
        ("kling-3-pro-audio", 1_134_000),
        ("seedance-2-pro", 2_047_950),
        ("kyma/seedance-2-fast", 1_632_825),
    ],
)
def test_kyma_five_second_clips(catalog: Catalog, model_id: str, five_seconds: int) -> None:
    assert priced(catalog, model_id, duration_s=5).micros == five_seconds


def test_kyma_bills_each_second(catalog: Catalog) -> None:
    assert priced(catalog, "kling-3-pro", duration_s=1).micros == 151_200
    assert priced(catalog, "kling-3-pro", duration_s=10).micros == 1_512_000
    assert priced(catalog, "kyma/seedance-2-fast", duration_s=3).micros == 979_695


# --- Apiframe: credits (seed-dialects 4.8 and the job examples in 4.5/4.7) ---


@pytest.mark.parametrize(
    ("mode", "audio", "per_second"),
    [("standard", False, 3), ("standard", True, 4), ("pro", False, 5), ("pro", True, 7)],
)
def test_apiframe_kling_3_credits_per_second(
    catalog: Catalog, mode: str, audio: bool, per_second: int
) -> None:
    result = priced(catalog, "kling-3.0", duration_s=10, audio=audio, options={"mode": mode})
    assert result.credits == 10 * per_second
    assert result.micros == 10 * per_second * 10_000
    assert result.variant == f"{mode}+{'audio' if audio else 'silent'}"


def test_apiframe_kling_3_pro_audio_ten_seconds_is_seventy_credits(catalog: Catalog) -> None:
    result = priced(catalog, "kling-3.0", duration_s=10, audio=True, options={"mode": "pro"})
    assert result.credits == 70
    assert "70 credits" in result.lines[0].label


def test_apiframe_kling_3_defaults_cost_the_documented_35_credits(catalog: Catalog) -> None:
    # Defaults: 5 s, mode pro, generate_audio true -> the creditCost 35 in the job example.
    result = priced(catalog, "kling-3.0")
    assert (result.credits, result.variant) == (35, "pro+audio")


@pytest.mark.parametrize(
    ("duration", "audio", "credits"),
    [(4, False, 5), (4, True, 10), (6, False, 8), (6, True, 15), (8, False, 10), (8, True, 20)],
)
def test_apiframe_veo_3_1_flat_by_duration_and_audio(
    catalog: Catalog, duration: int, audio: bool, credits: int
) -> None:
    result = priced(catalog, "veo-3.1", duration_s=duration, audio=audio)
    assert result.credits == credits
    assert result.rule == "flat"


@pytest.mark.parametrize("duration", [4, 8, 10, 12, 15])
def test_apiframe_sora_2_is_one_credit_per_second(catalog: Catalog, duration: int) -> None:
    assert priced(catalog, "sora-2", duration_s=duration).credits == duration


@pytest.mark.parametrize(("tier", "per_second"), [("standard", 3), ("high", 5)])
def test_apiframe_sora_2_pro_by_resolution_tier(catalog: Catalog, tier: str, per_second: int) -> None:
    result = priced(catalog, "sora-2-pro", duration_s=8, options={"resolution_tier": tier})
    assert result.credits == 8 * per_second


def test_apiframe_sora_2_pro_twelve_seconds_is_the_documented_36(catalog: Catalog) -> None:
    assert priced(catalog, "sora-2-pro", duration_s=12).credits == 36


def test_credit_value_is_configurable(catalog: Catalog) -> None:
    spec = catalog.get("sora-2")
    req = normalize(spec, request_for(spec, duration_s=8))
    assert quote(spec, req, credit_usd=Decimal("0.10")).micros == 800_000
    assert quote(spec, req, credit_usd=Decimal("0.0125")).micros == 100_000


def test_fractional_credits_round_half_up_to_whole_credits(catalog: Catalog) -> None:
    # seedance-1-lite at 720p is 0.4 credits/s (inferred): 5 s = 2 credits, 10 s = 4.
    assert priced(catalog, "seedance-1-lite", duration_s=5, resolution="720p").credits == 2
    # 1080p at 0.5 credits/s on seedance-1-pro-fast: 5 s = 2.5 -> 3 credits.
    assert priced(catalog, "seedance-1-pro-fast", duration_s=5).credits == 3


# --- Every entry has a price for every combination it accepts ---


def _combinations(spec: ModelSpec) -> list[dict[str, Any]]:
    axes: dict[str, list[Any]] = {
        "duration_s": list(spec.durations),
        "resolution": list(spec.resolutions) or [None],
        "audio": [False, True] if spec.audio == "optional" else [spec.audio == "always"],
    }
    for name, choices in spec.options.items():
        axes[f"options.{name}"] = list(choices)
    found: list[dict[str, Any]] = []
    for values in itertools.product(*axes.values()):
        combo = dict(zip(axes, values, strict=True))
        only = spec.durations_by_resolution.get(combo["resolution"] or "")
        if only and combo["duration_s"] not in only:
            continue
        options = {k.split(".", 1)[1]: combo.pop(k) for k in list(combo) if "." in k}
        found.append({**combo, "options": options})
    return found


def test_every_accepted_combination_has_a_positive_price(catalog: Catalog) -> None:
    checked = 0
    for spec in catalog.all():
        if not spec.orderable:
            continue
        for combo in _combinations(spec):
            result = quote(spec, normalize(spec, request_for(spec, **combo)))
            assert result.micros > 0, (spec.id, combo)
            checked += 1
    assert checked > 500


def test_a_missing_variant_is_an_invalid_request(catalog: Catalog) -> None:
    spec = catalog.get("veo-3.1")
    raw = request_for(spec, duration_s=5, audio=True)  # 5 s is not sold: no variant
    with pytest.raises(InvalidRequest, match="priced combinations") as raised:
        quote(spec, raw)
    assert raised.value.param == "duration"


# --- Settlement ---


def test_settle_charges_the_quote_when_the_clip_is_complete(catalog: Catalog) -> None:
    spec = catalog.get("kling-3-pro")
    req = normalize(spec, request_for(spec, duration_s=10))
    held = quote(spec, req).micros
    assert settle_amount(spec, req, delivered_duration_s=10.04, held_micros=held) == held
    assert settle_amount(spec, req, delivered_duration_s=None, held_micros=held) == held


def test_settle_lowers_the_charge_for_a_shorter_clip(catalog: Catalog) -> None:
    spec = catalog.get("kling-3-pro")
    req = normalize(spec, request_for(spec, duration_s=10))
    held = quote(spec, req).micros
    # 6.2 s delivered is billed as 7 s.
    assert settle_amount(spec, req, delivered_duration_s=6.2, held_micros=held) == 7 * 151_200


def test_settle_rounds_up_to_a_duration_the_model_sells(catalog: Catalog) -> None:
    spec = catalog.get("veo-3.1")
    req = normalize(spec, request_for(spec, duration_s=8, audio=True))
    held = quote(spec, req).micros
    assert held == 200_000
    # 4.5 s -> 5 s -> the 6 s variant (15 credits).
    assert settle_amount(spec, req, delivered_duration_s=4.5, held_micros=held) == 150_000
    assert settle_amount(spec, req, delivered_duration_s=3.0, held_micros=held) == 100_000


def test_settle_never_exceeds_the_hold(catalog: Catalog) -> None:
    spec = catalog.get("kuaishou/kling-v3.0-pro-t2v")
    req = normalize(spec, request_for(spec, duration_s=10))
    assert settle_amount(spec, req, delivered_duration_s=10, held_micros=1_000_000) == 1_000_000
    assert settle_amount(spec, req, delivered_duration_s=60, held_micros=2_240_000) == 2_240_000
    assert settle_amount(spec, req, delivered_duration_s=float("nan"), held_micros=5) == 5


def test_settle_ignores_duration_for_a_flat_price(catalog: Catalog) -> None:
    spec = catalog.get("T2V-01")
    req = normalize(spec, request_for(spec))
    assert not depends_on_duration(spec)
    assert settle_amount(spec, req, delivered_duration_s=1.0, held_micros=430_000) == 430_000


def test_settle_on_a_variant_price_uses_the_shortest_sold_duration(catalog: Catalog) -> None:
    spec = catalog.get("MiniMax-Hailuo-02")
    req = normalize(spec, request_for(spec, duration_s=10, resolution="512p"))
    held = quote(spec, req).micros
    assert held == 150_000
    # 2 s delivered -> the shortest sold duration, 6 s, priced 0.10.
    assert settle_amount(spec, req, delivered_duration_s=2, held_micros=held) == 100_000


def test_settle_keeps_the_price_when_the_shorter_variant_is_not_priced() -> None:
    spec = ModelSpec(
        id="two-lengths",
        name="two-lengths",
        namespace="native",
        label="Two",
        vendor="Us",
        durations=(5, 10),
        default_duration=10,
        price=PriceRule(rule="flat", variant_by=("duration",), variants={"10": Decimal(1)}),
    )
    req = normalize(spec, request_for(spec))
    assert settle_amount(spec, req, delivered_duration_s=4, held_micros=1_000_000) == 1_000_000


# --- Properties ---

_CATALOG = load_catalog()
_DURATION_PRICED = [
    spec
    for spec in _CATALOG.all()
    if spec.orderable and spec.price is not None and spec.price.rule in ("per_clip", "per_second")
]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), spec=st.sampled_from(_DURATION_PRICED))
def test_quote_is_positive_and_monotone_in_duration(data: st.DataObject, spec: ModelSpec) -> None:
    shorter, longer = sorted(data.draw(st.lists(st.sampled_from(spec.durations), min_size=2, max_size=2)))
    first = quote(spec, normalize(spec, request_for(spec, duration_s=shorter)))
    second = quote(spec, normalize(spec, request_for(spec, duration_s=longer)))
    assert 0 < first.micros <= second.micros


@settings(max_examples=300, deadline=None)
@given(
    spec=st.sampled_from([s for s in _CATALOG.all() if s.orderable]),
    delivered=st.one_of(st.none(), st.floats(min_value=0, max_value=120)),
    hold_scale=st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(2)]),
)
def test_settlement_is_bounded_by_the_hold_and_the_quote(
    spec: ModelSpec, delivered: float | None, hold_scale: Decimal
) -> None:
    req = normalize(spec, request_for(spec))
    full = quote(spec, req).micros
    held = int(full * hold_scale)
    charge = settle_amount(spec, req, delivered_duration_s=delivered, held_micros=held)
    assert 0 <= charge <= min(held, full)
    assert req.duration_s is not None
    if delivered is None or delivered >= req.duration_s:
        assert charge == min(held, full)
