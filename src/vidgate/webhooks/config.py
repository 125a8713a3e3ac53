"""The delivery knobs: retry schedule, loop intervals and batch sizes, with safe defaults.

Retries back off exponentially (``base * factor ** (n - 1)``, capped) with jitter,
and keep going until the delivery's retry window (at least 24 h) has passed, so a
receiver that is down for a day still gets every event. The defaults suit a
server; tests shrink them through ``Settings.extra`` (``webhook_retry_base_s``
and friends, see ``DeliveryConfig.from_settings``) instead of sleeping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from vidgate.config import Settings

DAY_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 10.0
    factor: float = 2.0
    cap_s: float = 2 * 3600.0
    jitter: float = 0.25  # each delay is drawn from [d * (1 - jitter), d]
    max_age_s: float = 26 * 3600.0  # keep retrying until this long after the first attempt

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.factor < 1 or self.cap_s < self.base_s or not 0 <= self.jitter < 1:
            raise ValueError("invalid retry policy")

    def delay_s(self, attempts: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        exponent = max(0, attempts - 1)
        delay = self.cap_s if exponent > 64 else min(self.cap_s, self.base_s * self.factor**exponent)
        draw = (rng or random).random()
        return delay * (1 - self.jitter * draw)

    def next_attempt(
        self, *, attempts: int, window_started_at: datetime, now: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again after a failure, or None once the retry window has passed."""
        if (now - window_started_at).total_seconds() >= self.max_age_s:
            return None
        return now + timedelta(seconds=self.delay_s(attempts, rng=rng))


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    interval_s: float = 0.5  # how often the sender looks for new events and due deliveries
    fanout_batch: int = 200
    claim_batch: int = 32
    concurrency: int = 16
    attempt_timeout_s: float = 15.0  # one POST, connect to last byte
    handshake_timeout_s: float = 3.0  # MiniMax: the challenge must be echoed within 3 s
    cursor_grace_s: float = 60.0  # how late an older event id may still commit (PostgreSQL)
    response_excerpt_bytes: int = 1024
    purge_interval_s: float = 60.0
    purge_batch: int = 100

    @property
    def lease_s(self) -> float:
        """A claimed batch runs at most this long, even if every delivery times out in turn."""
        return self.attempt_timeout_s * self.claim_batch + self.handshake_timeout_s + 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryConfig:
        """Defaults, overridden by numeric ``settings.extra`` entries named below."""
        extra = settings.extra or {}

        def number(name: str) -> float | None:
            value = extra.get(name)
            return float(value) if value not in (None, "") else None

        config = cls()
        retry = config.retry
        for key, attr in (
            ("webhook_retry_base_s", "base_s"),
            ("webhook_retry_cap_s", "cap_s"),
            ("webhook_retry_max_age_s", "max_age_s"),
            ("webhook_retry_jitter", "jitter"),
        ):
            if (value := number(key)) is not None:
                retry = replace(retry, **{attr: value})
        changes: dict[str, Any] = {}
        for key, attr in (
            ("webhook_interval_s", "interval_s"),
            ("webhook_attempt_timeout_s", "attempt_timeout_s"),
            ("webhook_cursor_grace_s", "cursor_grace_s"),
            ("retention_interval_s", "purge_interval_s"),
        ):
            if (value := number(key)) is not None:
                changes[attr] = value
        return replace(config, retry=retry, **changes)
