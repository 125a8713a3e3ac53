"""The native wire shapes: the OpenAI Videos API's video object, plus gateway fields.

OpenAI clients read ``id, object, status, progress, model, seconds, size,
created_at, completed_at, expires_at, error, remixed_from_video_id, prompt``;
everything else is vidgate's extension and is ignored by the SDK.
"""

from __future__ import annotations

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
    """``POST /v1/quotes``: the pricing inputs of a create (model, seconds or duration,
    size or resolution and aspect ratio, audio, options); the other create fields are
    accepted and do not matter. Nothing is created or charged."""


def parse_seconds(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip().removesuffix("s")
    if not text.isdigit():
        raise InvalidRequest(f"seconds must be a whole number of seconds, got {value!r}", param="seconds")
    return int(text)


def offered_sizes(spec: ModelSpec) -> dict[tuple[int, int], tuple[str | None, str | None]]:
    """Every frame size the model makes -> the (resolution, aspect ratio) that makes it.

    A model without selectable resolutions renders at 720p (the resolution is left
    unset); one without selectable aspect ratios makes its default shape (16:9) only.
    """
    resolutions: tuple[str | None, ...] = spec.resolutions or (None,)
    aspects: tuple[str | None, ...] = spec.aspect_ratios or (None,)
    offered: dict[tuple[int, int], tuple[str | None, str | None]] = {}
    for resolution in resolutions:
        for aspect in aspects:
            shape = aspect or spec.default_aspect_ratio
            offered.setdefault(frame_size(resolution, shape), (resolution, aspect))
    return offered


def parse_size(size: str, spec: ModelSpec) -> tuple[str | None, str | None]:
    """``1280x720`` -> (``720p``, ``16:9``), one of the sizes the model makes; else a 400
    naming them. An image-to-video model whose frame follows its input image has no
    size to choose."""
    width_text, sep, height_text = size.lower().partition("x")
    if not (sep and width_text.isdigit() and height_text.isdigit() and int(width_text) and int(height_text)):
        raise InvalidRequest(f"size must look like 1280x720, got {size!r}", param="size")
    wanted = (int(width_text), int(height_text))
    if not spec.aspect_ratios and spec.requires_image:
        raise InvalidRequest(
            f"{spec.id} makes its video in the input image's shape; size cannot be chosen, leave it out",
            param="size",
        )
    offered = offered_sizes(spec)
    if wanted in offered:
        return offered[wanted]
    choices = ", ".join(sorted(f"{w}x{h}" for w, h in offered))
    raise InvalidRequest(f"size {size!r} is not offered by {spec.id}; choose one of: {choices}", param="size")
