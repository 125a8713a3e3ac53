"""Random upstream faults for any fake: ``--chaos "5xx=0.2,429=0.05,slow=0.1,malformed=0.05"``.

Each upstream API call (submit, poll, cancel, list) independently gets one of:

- ``5xx``: 503 at once; the call never reaches the fake, so a submit creates nothing;
- ``429``: 429 with ``Retry-After: 1`` at once; nothing is created either;
- ``slow``: the fake handles the call (a submit CREATES the job), then the answer is held
  back ``slow_s`` seconds, so a client with a shorter time limit does not learn the
  outcome of a submission that did happen;
- ``malformed``: the fake handles the call (a submit CREATES the job), then its 2xx JSON
  answer is replaced by an HTML body, again an acceptance nobody can read;

with the given probabilities (their sum at most 1), from a seedable generator. The
fake's own controls (``/__fake...``) and any path the fake marks as media are exempt.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, fields
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OUTCOMES = ("5xx", "429", "slow", "malformed")
MALFORMED_BODY = b"<html><body><h1>502 Bad Gateway</h1>upstream hiccup</body></html>"


@dataclass(frozen=True, slots=True)
class Chaos:
    """Fault probabilities per API call; all zero means no chaos."""

    p_5xx: float = 0.0
    p_429: float = 0.0
    p_slow: float = 0.0
    p_malformed: float = 0.0
    slow_s: float = 40.0

    def __post_init__(self) -> None:
        probabilities = [self.p_5xx, self.p_429, self.p_slow, self.p_malformed]
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or sum(probabilities) > 1.0 + 1e-9:
            raise ValueError("chaos probabilities must each be in 0..1 and sum to at most 1")
        if self.slow_s < 0:
            raise ValueError("slow_s must not be negative")

    @classmethod
    def parse(cls, spec: str, *, slow_s: float = 40.0) -> Chaos:
        """``"5xx=0.2,429=0.05,slow=0.1,malformed=0.05"`` (any subset, any order)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, number = part.partition("=")
            if not sep or name.strip() not in OUTCOMES:
                raise ValueError(f"bad chaos item {part!r}; use NAME=P with NAME in {', '.join(OUTCOMES)}")
            try:
                values[f"p_{name.strip()}"] = float(number)
            except ValueError as exc:
                raise ValueError(f"bad chaos probability in {part!r}") from exc
        return cls(slow_s=slow_s, **values)

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.startswith("p_"))

    def roll(self, rng: random.Random) -> str | None:
        """The fault for one call, or None."""
        draw = rng.random()
        for name in OUTCOMES:
            draw -= getattr(self, f"p_{name}")
            if draw < 0:
                return name
        return None


class ChaosMiddleware:
    """Plays ``state.chaos`` on every non-exempt HTTP call to the wrapped app."""

    def __init__(self, app: ASGIApp, state: ChaosState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chaos = self.state.chaos
        if scope["type"] != "http" or chaos is None or not chaos.active or self.state.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        outcome = chaos.roll(self.state.rng)
        if outcome is not None:
            self.state.log.append((scope["method"], scope["path"], outcome))
        if outcome in ("5xx", "429"):
            status = 503 if outcome == "5xx" else 429
            body = json.dumps({"error": {"message": f"chaos: HTTP {status}", "code": status}}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if status == 429:
                headers.append((b"retry-after", b"1"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if outcome is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)  # the fake does its work (a submit creates the job)
        if outcome == "slow":
            await asyncio.sleep(chaos.slow_s)
        start: Message = messages[0] if messages else {"status": 500, "headers": []}
        answered: dict[bytes, bytes] = {bytes(k).lower(): bytes(v) for k, v in start.get("headers", [])}
        is_json = answered.get(b"content-type", b"").startswith(b"application/json")
        if outcome == "malformed" and 200 <= int(start["status"]) < 300 and is_json:
            replaced = [
                (b"content-type", b"text/html"),
                (b"content-length", str(len(MALFORMED_BODY)).encode()),
            ]
            await send({"type": "http.response.start", "status": start["status"], "headers": replaced})
            await send({"type": "http.response.body", "body": MALFORMED_BODY})
            return
        for message in messages:
            await send(message)


class ChaosState:
    """What the middleware reads on each call; the fake owns it and may change it live."""

    def __init__(self, chaos: Chaos | None, seed: int | None, exempt_patterns: tuple[str, ...] = ()) -> None:
        self.chaos = chaos
        self.rng = random.Random(seed)
        self.log: list[tuple[str, str, str]] = []  # (method, path, outcome) of each fault played
        self._exempt = [re.compile(p) for p in exempt_patterns]

    def reseed(self, seed: int | None) -> None:
        self.rng = random.Random(seed)

    def exempt(self, path: str) -> bool:
        return path.startswith("/__fake") or any(p.search(path) for p in self._exempt)
