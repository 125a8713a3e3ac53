"""Time, in one place, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_ms(at: datetime | None) -> str | None:
    """``2026-04-26T10:00:00.000Z``: ISO-8601 UTC with milliseconds, as several dialects emit."""
    if at is None:
        return None
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def unix(at: datetime | None) -> int | None:
    return int(at.timestamp()) if at is not None else None
