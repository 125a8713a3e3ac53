"""Venice models that have an upstream: each one prices, routes and has an upstream cost.

The table is ours, from the upstreams' published model pages (see the cites in
``data/upstream/fal.toml``): for each Venice model made orderable, the upstream it
goes to, and what that upstream charges for the model's default request (Venice's
default duration, resolution and audio).
"""

from __future__ import annotations

import pytest

from vidgate.catalog.loader import Catalog, load_catalog
from vidgate.catalog.models import ModelSpec
from vidgate.catalog.pricing import quote, upstream_cost
from vidgate.catalog.routing import catalog_config, plan
from vidgate.catalog.validation import normalize
from vidgate.domain.request import GenerationRequest, ImageInput
from vidgate.errors import InvalidRequest, ModelUnavailable

# Venice model -> (provider, upstream model id, upstream cost of the default request in micro-USD)
ROUTED: dict[str, tuple[str, str, int]] = {
    # LTX 2.3 on fal: 6 s at 1080p by default.
    "ltx-2-v2-3-fast-text-to-video": ("fal", "fal-ai/ltx-2.3/text-to-video/fast", 6 * 40_000),
    "ltx-2-v2-3-fast-image-to-video": ("fal", "fal-ai/ltx-2.3/image-to-video/fast", 6 * 40_000),
    "ltx-2-v2-3-full-text-to-video": ("fal", "fal-ai/ltx-2.3/text-to-video", 6 * 80_000),
    "ltx-2-v2-3-full-image-to-video": ("fal", "fal-ai/ltx-2.3/image-to-video", 6 * 60_000),
    # Kling O3 and 3.0 Turbo on fal: 5 s, audio on where it is configurable.
    "kling-o3-pro-text-to-video": ("fal", "fal-ai/kling-video/o3/pro/text-to-video", 5 * 140_000),
    "kling-o3-pro-image-to-video": ("fal", "fal-ai/kling-video/o3/pro/image-to-video", 5 * 140_000),
    "kling-o3-standard-text-to-video": ("fal", "fal-ai/kling-video/o3/standard/text-to-video", 5 * 112_000),
    "kling-o3-standard-image-to-video": ("fal", "fal-ai/kling-video/o3/standard/image-to-video", 5 * 112_000),
    "kling-o3-4k-text-to-video": ("fal", "fal-ai/kling-video/o3/4k/text-to-video", 5 * 420_000),
    "kling-o3-4k-image-to-video": ("fal", "fal-ai/kling-video/o3/4k/image-to-video", 5 * 420_000),
    "kling-v3-turbo-pro-text-to-video": ("fal", "fal-ai/kling-video/v3/turbo/pro/text-to-video", 5 * 140_000),
    "kling-v3-turbo-pro-image-to-video": (
        "fal",
        "fal-ai/kling-video/v3/turbo/pro/image-to-video",
        5 * 140_000,
    ),
    "kling-v3-turbo-standard-image-to-video": (
        "fal",
        "fal-ai/kling-video/v3/turbo/standard/image-to-video",
        5 * 112_000,
    ),
    "ovi-image-to-video": ("fal", "fal-ai/ovi/image-to-video", 200_000),
    # PixVerse: 5 s at 720p with audio ($0.45 + $0.45 on v5.6; $0.065/s on C1).
    "pixverse-v5.6-text-to-video": ("fal", "fal-ai/pixverse/v5.6/text-to-video", 900_000),
    "pixverse-v5.6-image-to-video": ("fal", "fal-ai/pixverse/v5.6/image-to-video", 900_000),
    "pixverse-c1-text-to-video": ("fal", "fal-ai/pixverse/c1/text-to-video", 5 * 65_000),
    "pixverse-c1-image-to-video": ("fal", "fal-ai/pixverse/c1/image-to-video", 5 * 65_000),
    # Vidu Q3: 5 s at 720p, 2.2 x $0.07/s.
    "vidu-q3-text-to-video": ("fal", "fal-ai/vidu/q3/text-to-video", 5 * 154_000),
    "vidu-q3-image-to-video": ("fal", "fal-ai/vidu/q3/image-to-video", 5 * 154_000),
    # Wan 2.7 (with its soundtrack) and HappyHorse 1.0: 5 s at the default resolution.
    "wan-2-7-enhanced-text-to-video": ("fal", "fal-ai/wan/v2.7/text-to-video", 5 * 100_000),
    "wan-2-7-enhanced-image-to-video": ("fal", "fal-ai/wan/v2.7/image-to-video", 5 * 100_000),
    "happyhorse-1-0-text-to-video": ("fal", "alibaba/happy-horse/text-to-video", 5 * 140_000),
    "happyhorse-1-0-image-to-video": ("fal", "alibaba/happy-horse/image-to-video", 5 * 140_000),
    # Grok Imagine Video 1.5 on xAI's own API: 5 s at 720p ($0.14/s; xAI's reported cost wins).
    "grok-imagine-1-5-text-to-video-private": ("xai", "grok-imagine-video-1.5", 5 * 140_000),
    "grok-imagine-1-5-image-to-video-private": ("xai", "grok-imagine-video-1.5", 5 * 140_000),
    # Gemini Omni Flash: 720p, about $0.125/s (t2v) and $0.13/s (i2v) by fal's own figure.
    "gemini-omni-flash-text-to-video": ("fal", "google/gemini-omni-flash", 4 * 125_000),
    "gemini-omni-flash-image-to-video": ("fal", "google/gemini-omni-flash/image-to-video", 4 * 130_000),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _default_request(spec: ModelSpec) -> GenerationRequest:
    images = (ImageInput(url="https://img.example/first.png"),) if spec.requires_image else ()
    return normalize(spec, GenerationRequest(model=spec.id, prompt="a paper boat", images=images))


@pytest.mark.parametrize("name", sorted(ROUTED))
def test_a_routed_venice_model_prices_routes_and_has_an_upstream_cost(catalog: Catalog, name: str) -> None:
    provider, upstream, cost_micros = ROUTED[name]
    spec = catalog.resolve("venice", name)
    assert spec.orderable, spec.unavailable_reason
    req = _default_request(spec)
    assert quote(spec, req).micros > 0
    planned = plan(spec, catalog_config(spec), req, seed="job-1")
    assert [(p.spec.provider, p.spec.model) for p in planned] == [(provider, upstream)]
    route = planned[0].spec
    assert route.cost is not None and route.cost.cite
    cost = upstream_cost(spec, route, req)
    assert cost is not None
    assert cost.micros == cost_micros


def test_the_count_of_orderable_venice_models(catalog: Catalog) -> None:
    # 34 Venice models were orderable before (the 21 of the quote table, sora-2-text-to-video
    # and the rest of the seed era); sora-2-text-to-video is retired, this table adds 28.
    venice = catalog.in_namespace("venice")
    orderable = {spec.name for spec in venice if spec.orderable}
    assert set(ROUTED) <= orderable
    assert len(orderable) == 34 - 1 + len(ROUTED) == 61
    assert len(venice) - len(orderable) == 37 + 1


@pytest.mark.parametrize("resolution", ["1440p", "2160p"])
def test_ltx_fast_refuses_over_10_s_where_fal_cannot_make_it(catalog: Catalog, resolution: str) -> None:
    # fal's LTX 2.3 Fast makes 12-20 s only at 1080p: the model refuses rather than shortens.
    spec = catalog.resolve("venice", "ltx-2-v2-3-fast-text-to-video")
    base = GenerationRequest(model=spec.id, prompt="p", resolution=resolution)
    assert normalize(spec, base.model_copy(update={"duration_s": 10})).duration_s == 10
    with pytest.raises(InvalidRequest) as refused:
        normalize(spec, base.model_copy(update={"duration_s": 12}))
    assert refused.value.param == "duration"
    assert normalize(spec, base.model_copy(update={"resolution": "1080p", "duration_s": 20})).duration_s == 20


def test_sora_2_text_to_video_is_retired(catalog: Catalog) -> None:
    spec = catalog.resolve("venice", "sora-2-text-to-video")
    assert not spec.orderable
    assert spec.unavailable_reason and "retired by Venice on 2026-09-24" in spec.unavailable_reason
    with pytest.raises(ModelUnavailable):
        normalize(spec, GenerationRequest(model=spec.id, prompt="p"))


def test_unrouted_venice_models_say_what_was_searched(catalog: Catalog) -> None:
    for spec in catalog.in_namespace("venice"):
        if spec.orderable or spec.name == "sora-2-text-to-video":
            continue
        reason = spec.unavailable_reason or ""
        assert "searched" in reason or "adapter" in reason, (spec.name, reason)
        assert "none of our upstream price lists" not in reason, spec.name


@pytest.mark.parametrize("name", ["runway-gen4-turbo", "runway-gen4-5", "runway-gen4-5-text"])
def test_runway_routes_make_every_length_venice_sells(catalog: Catalog, name: str) -> None:
    # Runway's API takes any whole duration from 2 to 10 s for gen4_turbo and gen4.5, as Venice sells.
    spec = catalog.resolve("venice", name)
    assert spec.durations == tuple(range(2, 11))
    assert [(r.provider, r.durations) for r in spec.routes] == [("runway", ())]


@pytest.mark.parametrize("name", ["veo3-full-image-to-video", "veo3-fast-image-to-video"])
def test_veo_3_image_to_video_sells_8_s_only(catalog: Catalog, name: str) -> None:
    # Venice sells Veo 3 image-to-video at 8 s only; every route (Vertex, Gemini, fal) makes 8 s.
    spec = catalog.resolve("venice", name)
    assert spec.durations == (8,)
    assert all(not r.durations or 8 in r.durations for r in spec.routes)
