"""The dialect-free description of one generation job."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ImageInput(BaseModel):
    """An image handed to the model: a URL (http(s) or ``data:``) we fetch or pass on."""

    model_config = ConfigDict(frozen=True)

    url: str
    role: str = "first_frame"  # first_frame | last_frame | reference


class GenerationRequest(BaseModel):
    """What every dialect translates its request into, after catalog resolution.

    ``model`` is the catalog id. Sizes are seconds and names from the catalog
    (``720p``, ``16:9``). Nothing here is in any dialect's wire form.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    prompt: str = ""
    negative_prompt: str | None = None
    duration_s: int | None = None
    # The length asked for when it is not whole (Thalam takes 5.5): ``duration_s`` is it
    # rounded up (what the upstream is asked to make); prices follow the asked length.
    asked_duration_s: Decimal | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    images: tuple[ImageInput, ...] = ()
    audio: bool | None = None
    seed: int | None = None
    # Catalog-declared options (e.g. Kling "mode", Sora "resolution tier").
    options: dict[str, Any] = Field(default_factory=dict)
    # Passed to the upstream unchanged (Kyma "extra", per-family params).
    provider_options: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None
    # Which events the per-job webhook wants (None: every event of its format).
    webhook_events: tuple[str, ...] | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def first_frame(self) -> str | None:
        return next((i.url for i in self.images if i.role == "first_frame"), None)

    @property
    def last_frame(self) -> str | None:
        return next((i.url for i in self.images if i.role == "last_frame"), None)

    @property
    def reference_images(self) -> list[str]:
        return [i.url for i in self.images if i.role == "reference"]
