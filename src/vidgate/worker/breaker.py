"""A circuit breaker per provider key: a key that keeps failing is paused for a while.

Circuits are named by key label (``fal``, or ``fal#2`` for a key of a pool: see
``worker.key_pool``), so one failing key of a pool pauses alone.

An open circuit only delays jobs (the submitter reschedules them); it never fails
one. After the cool-down the circuit is half open: the next call decides whether it
closes again (a success) or re-opens (a failure). Every change of state is reported
to ``on_change`` (the process's metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    threshold: int = 3  # consecutive retryable failures that open the circuit
    cooldown_s: float = 30.0
    on_change: Callable[[str, str], None] | None = None  # (key label, closed|open|half_open)
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, float] = field(default_factory=dict)

    def state(self, provider: str, now: float | None = None) -> str:
        until = self._open_until.get(provider)
        if until is None:
            return "closed"
        return "open" if (now or time.monotonic()) < until else "half_open"

    def allows(self, provider: str, now: float | None = None) -> bool:
        return self.state(provider, now) != "open"

    def success(self, provider: str) -> None:
        was = self.state(provider)
        self._failures.pop(provider, None)
        self._open_until.pop(provider, None)
        if was != "closed":
            self._report(provider, "closed")

    def failure(self, provider: str, now: float | None = None) -> None:
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self.threshold:
            self._open_until[provider] = (now or time.monotonic()) + self.cooldown_s
            self._report(provider, "open")

    def _report(self, provider: str, state: str) -> None:
        if self.on_change is not None:
            self.on_change(provider, state)
