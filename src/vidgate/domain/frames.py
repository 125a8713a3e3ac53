"""Frame sizes: what width and height a resolution and aspect ratio name."""

from __future__ import annotations

import math

_NAMED_HEIGHTS = {"4k": 2160, "2k": 1440, "hd": 720, "sd": 480, "standard": 720, "high": 1024}


def frame_size(resolution: str | None, aspect_ratio: str | None) -> tuple[int, int]:
    """``("720p", "16:9") -> (1280, 720)``; the short side is the resolution's number."""
    short: int = 720
    if resolution:
        word = resolution.lower()
        digits = word.removesuffix("p").removeprefix("true_")
        short = int(digits) if digits.isdigit() else _NAMED_HEIGHTS.get(word, 720)
    ratio_w, ratio_h = 16, 9
    if aspect_ratio and ":" in aspect_ratio:
        left, _, right = aspect_ratio.partition(":")
        if left.isdigit() and right.isdigit() and int(left) and int(right):
            ratio_w, ratio_h = int(left), int(right)
    width, height = float(short), float(short)
    if ratio_w >= ratio_h:
        width = short * ratio_w / ratio_h
    else:
        height = short * ratio_h / ratio_w
    return _even(width), _even(height)


def _even(value: float) -> int:
    return max(2, 2 * math.floor(value / 2 + 0.5))
