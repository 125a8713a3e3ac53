"""A provider's API keys, used in turn: a key pool, as resellers keep to spread rate limits.

An operator lists several keys for one provider (``VIDGATE_FAL_API_KEYS=k1,k2``, or
``api_keys = ["k1", "k2"]`` in its ``[providers.fal]`` table). Any other setting named
``<x>_keys`` pairs with ``<x>_key`` by position (Kling: ``SECRET_KEYS`` beside
``API_KEYS``). Each key gets its own adapter and a label, ``fal#1``, ``fal#2``, ...
(a provider with one key is labelled by its name alone); labels, never secrets, are
what logs, metrics, breakers and job records name.

Each submit starts at the next key (round robin). A key whose circuit breaker is open
is left out for now; a key the upstream refused as unauthenticated is taken out for
``auth_pause_s`` while other keys carry on, and is tried again only when no other key
can be (so a provider whose every key is refused still fails jobs with the reason).
A job's later calls (poll, cancel, find, download) use the key that submitted it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from vidgate.providers.base import ProviderAdapter, ProviderContext
from vidgate.worker.breaker import CircuitBreaker

log = logging.getLogger(__name__)

AUTH_PAUSE_S = 300.0  # a key refused as unauthenticated sits out this long
_LIST_SUFFIX = "_keys"


def key_settings(provider: str, settings: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Split one provider's settings into one set per key: ``[(label, settings), ...]``.

    ``{"api_keys": "a,b", "base_url": u}`` -> ``[("fal#1", {"api_key": "a", "base_url": u}),
    ("fal#2", {"api_key": "b", "base_url": u})]``. Raises ``SystemExit`` with the reason
    when paired lists differ in length (start-up stops rather than guess).
    """
    lists = {
        name.removesuffix("s"): [part.strip() for part in value.split(",") if part.strip()]
        for name, value in settings.items()
        if name.endswith(_LIST_SUFFIX)
    }
    shared = {name: value for name, value in settings.items() if not name.endswith(_LIST_SUFFIX)}
    lists = {name: values for name, values in lists.items() if values}
    if not lists:
        return [(provider, shared)]
    sizes = {name: len(values) for name, values in lists.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"VIDGATE_{provider.upper()}_{name.upper()}S has {n}" for name, n in sizes.items())
        raise SystemExit(f"provider {provider}: the key lists must be the same length ({listed})")
    count = next(iter(sizes.values()))
    return [
        (
            provider if count == 1 else f"{provider}#{n + 1}",
            shared | {name: values[n] for name, values in lists.items()},
        )
        for n in range(count)
    ]


@dataclass(frozen=True, slots=True)
class PoolKey:
    """One key of a provider: its label and the adapter built with it."""

    label: str
    adapter: ProviderAdapter
    ctx: ProviderContext | None = None


@dataclass
class KeyPool:
    """One provider's keys, in the order the operator listed them."""

    provider: str
    keys: Sequence[PoolKey]
    auth_pause_s: float = AUTH_PAUSE_S
    clock: Callable[[], float] = time.monotonic
    _turn: int = 0
    _refused_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError(f"provider {self.provider}: a key pool needs at least one key")

    @property
    def first(self) -> PoolKey:
        return self.keys[0]

    @property
    def labels(self) -> list[str]:
        return [k.label for k in self.keys]

    def get(self, label: str | None) -> PoolKey:
        """The key called ``label``; the first key when there is no label (jobs from before
        key pools) or the key is no longer configured."""
        return next((k for k in self.keys if k.label == label), self.first)

    def usable(self, breaker: CircuitBreaker) -> bool:
        """Whether any key's circuit lets a call through."""
        return any(breaker.allows(k.label) for k in self.keys)

    def in_turn(self, breaker: CircuitBreaker) -> tuple[list[PoolKey], bool]:
        """The keys to try for one submit, starting at the next key in turn, and whether
        some key was left out because its circuit is open."""
        start = self._turn % len(self.keys)
        self._turn += 1
        rotated = [*self.keys[start:], *self.keys[:start]]
        closed = [k for k in rotated if breaker.allows(k.label)]
        now = self.clock()
        trusted = [k for k in closed if self._refused_until.get(k.label, 0.0) <= now]
        return (trusted or closed), len(closed) < len(rotated)

    def refused(self, key: PoolKey) -> None:
        """The upstream refused ``key``'s credentials: take it out for a while."""
        self._refused_until[key.label] = self.clock() + self.auth_pause_s
        others = len(self.keys) - 1
        log.warning(
            "%s: the upstream refused key %s; it sits out %.0f s%s",
            self.provider,
            key.label,
            self.auth_pause_s,
            f" while {others} other key(s) carry on" if others else "",
        )

    def accepted(self, key: PoolKey) -> None:
        """A call with ``key`` went through: its credentials are fine again."""
        self._refused_until.pop(key.label, None)
