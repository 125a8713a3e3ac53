"""Venice's current video models are in the catalog with Venice's own constraints.

The facts below are ours, written down from Venice's published quote table
(veniceai/api-docs data/video-pricing.json, generated 2026-09-29 from
/api/v1/video/quote): each text-to-video and image-to-video model id with the clip
lengths (seconds) and resolutions Venice sells it at (empty: Venice takes no
resolution). Reference-to-video, video-to-video, transition, motion-control and
upscale models are outside the Venice dialect's t2v/i2v catalog.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from vidgate.catalog.loader import Catalog, load_catalog

# Venice model id -> (durations, resolutions)
VENICE_VIDEO: dict[str, tuple[Iterable[int], tuple[str, ...]]] = {
    "flux-3-image-to-video": ((5, 10, 15, 20), ("1080p", "720p")),
    "flux-3-text-to-video": ((5, 10, 15, 20), ("1080p", "720p")),
    "gemini-omni-flash-1-1-image-to-video": (range(4, 11, 2), ("1080p", "360p", "4k", "720p")),
    "gemini-omni-flash-1-1-text-to-video": (range(4, 11, 2), ("1080p", "360p", "4k", "720p")),
    "gemini-omni-flash-image-to-video": (range(4, 11, 2), ()),
    "gemini-omni-flash-text-to-video": (range(4, 11, 2), ()),
    "grok-imagine-1-5-image-to-video-private": (range(1, 16), ("1080p", "480p", "720p")),
    "grok-imagine-1-5-text-to-video-private": (range(1, 16), ("1080p", "480p", "720p")),
    "grok-imagine-image-to-video-private": (range(1, 16), ("480p", "720p")),
    "grok-imagine-text-to-video-private": (range(1, 16), ("480p", "720p")),
    "happyhorse-1-0-image-to-video": (range(3, 16), ("1080p", "720p")),
    "happyhorse-1-0-text-to-video": (range(3, 16), ("1080p", "720p")),
    "happyhorse-1-1-image-to-video": (range(3, 16), ("1080p", "720p")),
    "happyhorse-1-1-text-to-video": (range(3, 16), ("1080p", "720p")),
    "kling-2.5-turbo-pro-image-to-video": ((5, 10), ()),
    "kling-2.5-turbo-pro-text-to-video": ((5, 10), ()),
    "kling-2.6-pro-image-to-video": ((5, 10), ()),
    "kling-2.6-pro-text-to-video": ((5, 10), ()),
    "kling-o3-4k-image-to-video": (range(3, 16), ()),
    "kling-o3-4k-text-to-video": (range(3, 16), ()),
    "kling-o3-pro-image-to-video": (range(3, 16), ()),
    "kling-o3-pro-text-to-video": (range(3, 16), ()),
    "kling-o3-standard-image-to-video": (range(3, 16), ()),
    "kling-o3-standard-text-to-video": (range(3, 16), ()),
    "kling-v3-4k-text-to-video": (range(3, 16), ()),
    "kling-v3-pro-image-to-video": (range(3, 16), ()),
    "kling-v3-pro-text-to-video": (range(3, 16), ()),
    "kling-v3-standard-image-to-video": (range(3, 16), ()),
    "kling-v3-standard-text-to-video": (range(3, 16), ()),
    "kling-v3-turbo-pro-image-to-video": (range(3, 16), ()),
    "kling-v3-turbo-pro-text-to-video": (range(3, 16), ()),
    "kling-v3-turbo-standard-image-to-video": (range(3, 16), ()),
    "kling-v3-turbo-standard-text-to-video": (range(3, 16), ()),
    "longcat-distilled-image-to-video": ((5, 10, 15, 20, 30), ("720p",)),
    "longcat-distilled-text-to-video": ((5, 10, 15, 20, 30), ("720p",)),
    "longcat-image-to-video": ((5, 10, 15, 20, 30), ("720p",)),
    "longcat-text-to-video": ((5, 10, 15, 20, 30), ("720p",)),
    "ltx-2-5-fast-image-to-video": (range(6, 21, 2), ("1080p", "1440p", "2160p", "720p")),
    "ltx-2-5-fast-text-to-video": (range(6, 21, 2), ("1080p", "1440p", "2160p", "720p")),
    "ltx-2-5-pro-image-to-video": ((6, 8, 10), ("1080p", "720p")),
    "ltx-2-5-pro-text-to-video": ((6, 8, 10), ("1080p", "720p")),
    "ltx-2-v2-3-fast-image-to-video": (range(6, 21, 2), ("1080p", "1440p", "2160p")),
    "ltx-2-v2-3-fast-text-to-video": (range(6, 21, 2), ("1080p", "1440p", "2160p")),
    "ltx-2-v2-3-full-image-to-video": ((6, 8, 10), ("1080p", "1440p", "2160p")),
    "ltx-2-v2-3-full-text-to-video": ((6, 8, 10), ("1080p", "1440p", "2160p")),
    "minimax-h3-enhanced-text-to-video": (range(5, 16), ("2k", "768p")),
    "minimax-h3-image-to-video": (range(5, 16), ("2k", "768p")),
    "minimax-h3-max-image-to-video": (range(5, 16), ("1080p", "480p", "768p")),
    "minimax-h3-max-text-to-video": (range(5, 16), ("1080p", "480p", "768p")),
    "minimax-h3-max-turbo-image-to-video": (range(5, 16), ("1080p", "480p", "768p")),
    "minimax-h3-max-turbo-text-to-video": (range(5, 16), ("1080p", "480p", "768p")),
    "minimax-h3-text-to-video": (range(5, 16), ("2k", "768p")),
    "ovi-image-to-video": ((5,), ()),
    "pixverse-c1-image-to-video": ((3, 5, 8, 10, 15), ("1080p", "360p", "540p", "720p")),
    "pixverse-c1-text-to-video": ((3, 5, 8, 10, 15), ("1080p", "360p", "540p", "720p")),
    "pixverse-v5.6-image-to-video": ((5, 8), ("1080p", "360p", "540p", "720p")),
    "pixverse-v5.6-text-to-video": ((5, 8), ("1080p", "360p", "540p", "720p")),
    "runway-gen4-5": (range(2, 11), ()),
    "runway-gen4-5-text": (range(2, 11), ()),
    "runway-gen4-turbo": (range(2, 11), ()),
    "seedance-1-5-pro-image-to-video-basic": (range(4, 13), ("1080p", "480p", "720p")),
    "seedance-1-5-pro-text-to-video-basic": (range(4, 13), ("1080p", "480p", "720p")),
    "seedance-2-0-fast-image-to-video-basic": (range(4, 16), ("480p", "720p")),
    "seedance-2-0-fast-text-to-video-basic": (range(4, 16), ("480p", "720p")),
    "seedance-2-0-image-to-video-basic": (range(4, 16), ("1080p", "480p", "4k", "720p")),
    "seedance-2-0-mini-image-to-video-basic": (range(4, 16), ("480p", "720p")),
    "seedance-2-0-mini-text-to-video-basic": (range(4, 16), ("480p", "720p")),
    "seedance-2-0-text-to-video-basic": (range(4, 16), ("1080p", "480p", "4k", "720p")),
    "seedance-2-5-image-to-video-basic": (range(4, 31), ("1080p", "480p", "720p")),
    "seedance-2-5-text-to-video-basic": (range(4, 31), ("1080p", "480p", "720p")),
    "veo3-fast-image-to-video": ((8,), ()),
    "veo3-fast-text-to-video": ((4, 6, 8), ("1080p", "720p")),
    "veo3-full-image-to-video": ((8,), ()),
    "veo3-full-text-to-video": ((4, 6, 8), ("1080p", "720p")),
    "veo3.1-fast-image-to-video": ((4, 6, 8), ("1080p", "4k", "720p")),
    "veo3.1-fast-text-to-video": ((4, 6, 8), ("1080p", "4k", "720p")),
    "veo3.1-full-image-to-video": ((4, 6, 8), ("1080p", "4k", "720p")),
    "veo3.1-full-text-to-video": ((4, 6, 8), ("1080p", "4k", "720p")),
    "vidu-q3-image-to-video": ((3, 5, 8, 10, 12, 14, 16), ("1080p", "360p", "540p", "720p")),
    "vidu-q3-text-to-video": ((3, 5, 8, 10, 12, 14, 16), ("1080p", "360p", "540p", "720p")),
    "wan-2-2-enhanced-image-to-video": ((5, 8), ("480p", "720p")),
    "wan-2-7-enhanced-image-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-2-7-enhanced-text-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-2-7-image-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-2-7-text-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-2.5-preview-image-to-video": ((5, 10), ("1080p", "480p", "720p")),
    "wan-2.5-preview-text-to-video": ((5, 10), ("1080p", "480p", "720p")),
    "wan-2.6-flash-image-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-2.6-image-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-2.6-text-to-video": ((5, 10, 15), ("1080p", "720p")),
    "wan-3-0-image-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "480p", "720p")),
    "wan-3-0-prime-image-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "480p", "720p")),
    "wan-3-0-prime-pro-image-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "2k", "4k")),
    "wan-3-0-prime-pro-text-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "2k", "4k")),
    "wan-3-0-prime-text-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "480p", "720p")),
    "wan-3-0-pro-image-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "2k", "4k")),
    "wan-3-0-pro-text-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "2k", "4k")),
    "wan-3-0-text-to-video": ((2, 5, 10, 15, 20, 25, 30), ("1080p", "480p", "720p")),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.mark.parametrize("name", sorted(VENICE_VIDEO))
def test_current_venice_model_is_listed_with_its_constraints(catalog: Catalog, name: str) -> None:
    durations, resolutions = VENICE_VIDEO[name]
    spec = catalog.resolve("venice", name)
    assert spec.namespace == "venice"
    assert spec.durations == tuple(durations)
    assert sorted(spec.resolutions) == sorted(resolutions)
    assert spec.dialect["model_type"] in {"text-to-video", "image-to-video"}
    assert spec.dialect["model_type"] == ("text-to-video" if spec.modes == ("t2v",) else "image-to-video")


def test_every_orderable_venice_route_has_an_upstream_cost(catalog: Catalog) -> None:
    for spec in catalog.in_namespace("venice"):
        assert spec.price is not None, spec.id
        if spec.orderable:
            assert spec.routes, spec.id
            assert all(route.cost is not None for route in spec.routes), spec.id
        else:
            assert spec.unavailable_reason, spec.id


def test_prices_of_the_added_models_are_marked_inferred(catalog: Catalog) -> None:
    for name in VENICE_VIDEO:
        price = catalog.resolve("venice", name).price
        assert price is not None and price.source == "inferred", name
