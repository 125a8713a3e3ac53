"""A per-provider circuit breaker: a route that keeps failing is skipped for a while."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    threshold: int = 3  # consecutive retryable failures that open the circuit
    cooldown_s: float = 30.0
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, float] = field(default_factory=dict)

    def allows(self, provider: str, now: float | None = None) -> bool:
        until = self._open_until.get(provider)
        return until is None or (now or time.monotonic()) >= until

    def success(self, provider: str) -> None:
        self._failures.pop(provider, None)
        self._open_until.pop(provider, None)

    def failure(self, provider: str, now: float | None = None) -> None:
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self.threshold:
            self._open_until[provider] = (now or time.monotonic()) + self.cooldown_s
