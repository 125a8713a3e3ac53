"""The native wire shapes: the OpenAI Videos API's video object, plus gateway fields.

OpenAI clients read ``id, object, status, progress, model, seconds, size,
created_at, completed_at, expires_at, error, remixed_from_video_id, prompt``;
everything else is vidgate's extension and is ignored by the SDK.
"""

from __future__ import annotations

from math import gcd
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vidgate.catalog.models import ModelSpec
from vidgate.domain.frames import frame_size
from vidgate.errors import InvalidRequest


class CreateVideo(BaseModel):
    """``POST /v1/videos`` as JSON (multipart forms are read into the same model)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "sora-2"
    prompt: str = ""
    seconds: str | int | None = Field(None, description="OpenAI form: clip length in seconds, as a string")
    size: str | None = Field(None, description="OpenAI form: WIDTHxHEIGHT, e.g. 1280x720")
    duration: int | None = Field(None, description="Gateway form of seconds")
    resolution: str | None = None
    aspect_ratio: str | None = None
    image_url: str | None = Field(None, description="First frame: an https URL or a data: URL")
    last_frame_url: str | None = None
    reference_image_urls: list[str] = Field(default_factory=list)
    negative_prompt: str | None = None
    audio: bool | None = None
    seed: int | None = None
    options: dict[str, str] = Field(default_factory=dict)
    provider_options: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class RemixVideo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str


class QuoteRequest(CreateVideo):
    """``POST /v1/quotes``: the same inputs as a create; nothing is created or charged."""


def parse_seconds(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip().removesuffix("s")
    if not text.isdigit():
        raise InvalidRequest(f"seconds must be a whole number of seconds, got {value!r}", param="seconds")
    return int(text)


def _ratio(width: int, height: int) -> str:
    divisor = gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def parse_size(size: str, spec: ModelSpec) -> tuple[str | None, str | None]:
    """``1280x720`` -> (``720p``, ``16:9``), checked against what the model offers.

    A model without selectable resolutions renders at 720p: its sizes are 720p in
    each of its aspect ratios, and the resolution is left unset.
    """
    width_text, sep, height_text = size.lower().partition("x")
    if not (sep and width_text.isdigit() and height_text.isdigit() and int(width_text) and int(height_text)):
        raise InvalidRequest(f"size must look like 1280x720, got {size!r}", param="size")
    wanted = (int(width_text), int(height_text))
    resolutions: tuple[str | None, ...] = spec.resolutions or (None,)
    aspects: tuple[str | None, ...] = spec.aspect_ratios or (None,)
    offered: dict[tuple[int, int], tuple[str | None, str | None]] = {}
    for resolution in resolutions:
        for aspect in aspects:
            offered.setdefault(frame_size(resolution, aspect or _ratio(*wanted)), (resolution, aspect))
    if wanted in offered:
        return offered[wanted]
    choices = ", ".join(sorted(f"{w}x{h}" for w, h in offered))
    raise InvalidRequest(f"size {size!r} is not offered by {spec.id}; choose one of: {choices}", param="size")
