"""The read model of a job and of the caller, as every dialect sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus

KeyMode = Literal["live", "test"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account and the key they authenticated with."""

    account_id: str
    account_name: str
    key_id: str
    mode: KeyMode
    rate_limit_per_minute: int | None = None
    secret_hash: str = ""  # sha-256 of the key (Apiframe signs webhooks with it)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What we re-hosted for a succeeded job."""

    video_key: str
    thumbnail_key: str | None
    duration_s: float
    width: int
    height: int
    codec: str
    bytes: int
    extra_video_keys: tuple[str, ...] = ()  # models with several outputs (midjourney-video)

    def to_json(self) -> dict[str, Any]:
        return {
            "video": self.video_key,
            "thumbnail": self.thumbnail_key,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "bytes": self.bytes,
            "extra_videos": list(self.extra_video_keys),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MediaInfo:
        return cls(
            video_key=data["video"],
            thumbnail_key=data.get("thumbnail"),
            duration_s=float(data["duration_s"]),
            width=int(data["width"]),
            height=int(data["height"]),
            codec=str(data["codec"]),
            bytes=int(data["bytes"]),
            extra_video_keys=tuple(data.get("extra_videos") or ()),
        )


@dataclass(frozen=True, slots=True)
class ReportedCost:
    """What an upstream itself said a job cost: USD (``micros``) where it says so, and/or
    a count in its own unit (``units`` of ``unit_name``: "246840 tokens", "50 credits")."""

    micros: int | None = None
    units: Decimal | None = None
    unit_name: str | None = None

    @property
    def units_text(self) -> str | None:
        if self.units is None:
            return None
        return f"{self.units.normalize():f} {self.unit_name or 'units'}"


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    account_id: str
    key_id: str
    mode: KeyMode
    dialect: str
    model: str
    status: JobStatus
    progress: int
    request: GenerationRequest
    metadata: dict[str, str]
    estimated_micros: int
    held_micros: int
    charged_micros: int | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    deadline_at: datetime
    error_code: str | None = None
    error_message: str | None = None
    media: MediaInfo | None = None
    media_expires_at: datetime | None = None
    media_deleted_at: datetime | None = None
    deleted_at: datetime | None = None
    remixed_from: str | None = None
    webhook_url: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    upstream_key: str | None = None  # which key of the provider's pool owns the upstream job
    upstream_id: str | None = None
    upstream_request_id: str | None = None
    upstream_state: dict[str, Any] = field(default_factory=dict)
    upstream_status: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    route_index: int = 0
    attempts: int = 0
    eta_s: float | None = None
    idempotency_key: str | None = None
    # Scheduling: when the next step is due, and which worker holds the lease until when.
    run_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    # What the upstream charged (see docs/business.md): the figure reports use (the
    # reported cost when the upstream stated one, else the catalog's estimate, 0 when
    # nothing was billed), both inputs, the upstream's own units, and the source
    # ("published", "inferred" or "reported"). None until known.
    upstream_cost_micros: int | None = None
    upstream_cost_estimate_micros: int | None = None
    upstream_cost_reported_micros: int | None = None
    upstream_cost_units: str | None = None
    upstream_cost_source: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def refunded_micros(self) -> int:
        """What went back to the balance (all of the hold on failure, the rest on success)."""
        if not self.terminal:
            return 0
        return self.held_micros - (self.charged_micros or 0)
