"""What can be ordered: the schema of one catalog entry and its price rule.

Catalog entries are data (TOML files in ``vidgate/catalog/data``), validated into
these models at load. Every dialect namespace (thalam, venice, minimax, apiframe,
kyma, plus ``native`` for operator additions) has its own model names; ``id`` is the
unique native id (the name itself unless two namespaces share a name).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_CREDIT_USD = Decimal("0.01")  # Apiframe's published value of one credit

Mode = Literal["t2v", "i2v", "motion_control", "reference"]
Requirement = Literal["none", "optional", "required"]
AudioSupport = Literal["none", "optional", "always"]
# How the worker orders a model's routes (see ``vidgate.catalog.routing``).
RoutingPolicy = Literal["ordered", "weighted", "cheapest"]


class PriceRule(BaseModel):
    """How a job's price follows from its inputs.

    * ``flat``: ``amount`` per job.
    * ``per_clip``: ``amount`` for a clip of ``base_seconds``, scaled linearly by
      duration (capped at ``max_seconds``), as Thalam sells.
    * ``per_second``: ``amount`` per second of duration, as Kyma sells.

    ``variants`` replace ``amount`` for a variant key built from ``variant_by``:
    each input's value (``duration`` as ``"8"``, ``audio`` as ``"audio"``/``"silent"``,
    ``resolution``, ``aspect_ratio`` or any option name such as ``mode``) joined by
    ``"+"``, e.g. ``"pro+audio"`` or ``"8+silent"``.

    ``unit`` is ``usd`` or ``credit``; credits are turned into USD at ``credit_usd``
    per credit, a fact of the price list it comes from (Apiframe sells credits at
    $0.01), so pricing needs no setting to read a credit price.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Literal["flat", "per_clip", "per_second"]
    amount: Decimal | None = None
    base_seconds: int = 5
    max_seconds: int | None = None
    variant_by: tuple[str, ...] = ()
    variants: dict[str, Decimal] = Field(default_factory=dict)
    unit: Literal["usd", "credit"] = "usd"
    credit_usd: Decimal = DEFAULT_CREDIT_USD  # USD per credit (credit prices only)
    # What an upstream calls its credit ("credits", "units"), for upstream costs.
    unit_name: str = "credits"
    # seed: from the seed documents; published: from the seller's own price page
    # (upstream costs: the provider's); inferred: derived, not published; operator: set here.
    source: Literal["seed", "published", "inferred", "operator"] = "seed"
    # Upstream costs only: the upstream bills a job it accepted and then failed (most
    # bill only what they deliver).
    bills_failures: bool = False
    # Upstream costs only: where the price was read (a published price page) or what an
    # inferred one was derived from.
    cite: str = ""

    @model_validator(mode="after")
    def _has_a_price(self) -> PriceRule:
        if self.amount is None and not self.variants:
            raise ValueError("a price rule needs an amount or variants")
        return self


class RouteSpec(BaseModel):
    """One upstream that can serve the model, in preference order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    model: str
    image_model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    # The clip lengths this upstream can make, when they differ from what the model
    # sells (Thalam sells 1-30 s; Kling makes 5 or 10): the worker asks for the
    # shortest one at least as long as requested, and skips the route when none is.
    durations: tuple[int, ...] = ()
    # The resolutions and aspect ratios this upstream can make, when it cannot make every
    # one the model sells (Ark makes no 4k and no 9:21): the worker skips the route for a
    # request it cannot make. Empty: whatever the model sells.
    resolutions: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    # What the upstream charges for a job on this route, by the same rules as a sale
    # price, its ``source`` published or inferred. None when nobody has said.
    cost: PriceRule | None = None
    # Share of jobs under the "weighted" routing policy (0 keeps the route for failover only).
    weight: int = Field(1, ge=0)

    @property
    def key(self) -> tuple[str, str]:
        """What names the route in route settings and job records: (provider, upstream model)."""
        return (self.provider, self.model)

    def makes_resolution(self, resolution: str) -> bool:
        return not self.resolutions or resolution in self.resolutions

    def makes_aspect_ratio(self, aspect_ratio: str) -> bool:
        return not self.aspect_ratios or aspect_ratio in self.aspect_ratios


class ModelSpec(BaseModel):
    """One orderable (or listed-but-unavailable) video model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    namespace: str
    label: str
    vendor: str
    description: str = ""
    modes: tuple[Mode, ...] = ("t2v",)

    durations: tuple[int, ...]
    default_duration: int
    resolutions: tuple[str, ...] = ()
    default_resolution: str | None = None
    aspect_ratios: tuple[str, ...] = ()
    default_aspect_ratio: str | None = None
    # Extra constraints keyed by resolution, e.g. {"1080p": [6]} (Hailuo: 1080p is 6 s only).
    durations_by_resolution: dict[str, tuple[int, ...]] = Field(default_factory=dict)

    prompt_max: int = 2500
    prompt_required: bool = True
    image: Requirement = "none"
    last_frame: bool = False
    reference_images_max: int = 0
    audio: AudioSupport = "none"
    default_audio: bool = False
    negative_prompt: bool = False
    # Enumerated extra options, e.g. {"mode": ["standard", "pro"]}, with defaults.
    options: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    option_defaults: dict[str, str] = Field(default_factory=dict)
    outputs: int = 1

    price: PriceRule | None = None
    orderable: bool = True
    unavailable_reason: str | None = None
    routes: tuple[RouteSpec, ...] = ()
    # The default routing policy; an operator may change it at run time (route settings).
    routing: RoutingPolicy = "ordered"
    timeout_s: int | None = None
    # Facts only one dialect needs (Venice model_type, Apiframe family block...).
    dialect: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.default_duration not in self.durations:
            raise ValueError(f"{self.id}: default_duration not in durations")
        if self.default_resolution and self.default_resolution not in self.resolutions:
            raise ValueError(f"{self.id}: default_resolution not in resolutions")
        if self.default_aspect_ratio and self.default_aspect_ratio not in self.aspect_ratios:
            raise ValueError(f"{self.id}: default_aspect_ratio not in aspect_ratios")
        if self.orderable and self.price is None:
            raise ValueError(f"{self.id}: an orderable model needs a price")
        if not self.orderable and not self.unavailable_reason:
            raise ValueError(f"{self.id}: say why it is not orderable")
        seen = [r.key for r in self.routes]
        if len(seen) != len(set(seen)):
            raise ValueError(f"{self.id}: a route (provider and model) is listed twice")
        self._every_shape_has_a_route()
        return self

    def _every_shape_has_a_route(self) -> None:
        """Every resolution and aspect ratio sold is made by at least one route, so a
        request is refused at validation (400) rather than accepted and then failed,
        or sent to an upstream that makes a different video."""
        if not self.routes:
            return
        for field, sold, makes in (
            ("resolution", self.resolutions, RouteSpec.makes_resolution),
            ("aspect ratio", self.aspect_ratios, RouteSpec.makes_aspect_ratio),
        ):
            orphans = [value for value in sold if not any(makes(r, value) for r in self.routes)]
            if orphans:
                raise ValueError(
                    f"{self.id}: no route makes the {field} {', '.join(orphans)}; "
                    "stop selling it or add a route that makes it"
                )

    @property
    def requires_image(self) -> bool:
        return self.image == "required"
