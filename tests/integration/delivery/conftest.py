"""Fixtures for delivery tests: fast retry knobs, a loopback allowlist, a webhook receiver."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidgate.api.webhooks import new_endpoint_secret
from vidgate.config import Settings
from vidgate.domain.job import Principal
from vidgate.store import accounts as account_store
from vidgate.testing.server import serve_in_thread

FAST = {
    "webhook_retry_base_s": "0.05",
    "webhook_retry_cap_s": "0.2",
    "webhook_retry_jitter": "0.2",
    "webhook_interval_s": "0.05",
    "webhook_cursor_grace_s": "0",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with loopback allowed (receivers run there) and fast retries."""
    return settings.model_copy(update={"url_allowlist": "127.0.0.1", "extra": dict(FAST)})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on a real loopback port; ``fail_first`` attempts per webhook-id fail."""

    url: str = ""
    fail_first: int = 0
    always_fail: bool = False
    echo_challenge: bool = True
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)  # webhook-id -> status codes sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> Response:
        with self.lock:
            self.requests.append(request)
            if request.body.startswith(b'{"challenge"'):
                if not self.echo_challenge:
                    return JSONResponse({"nope": True})
                return JSONResponse({"challenge": request.json["challenge"]})
            msg_id = request.headers.get("webhook-id") or request.headers.get("x-event-id", "?")
            codes = self.answers.setdefault(msg_id, [])
            failing = self.always_fail or len(codes) < self.fail_first
            codes.append(500 if failing else 200)
        return Response("boom" if failing else "ok", status_code=500 if failing else 200)

    def delivered(self) -> list[Received]:
        """Requests that got a 2xx, in arrival order (challenges left out)."""
        with self.lock:
            out: list[Received] = []
            seen: dict[str, int] = {}
            for r in self.requests:
                if r.body.startswith(b'{"challenge"'):
                    continue
                msg_id = r.headers.get("webhook-id") or r.headers.get("x-event-id", "?")
                index = seen.get(msg_id, 0)
                seen[msg_id] = index + 1
                if self.answers[msg_id][index] == 200:
                    out.append(r)
            return out

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.delivered() if r.json.get("type") == event_type]

    async def wait_for(self, predicate: Callable[[Receiver], bool], *, timeout_s: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"receiver never saw what was expected; got {len(self.requests)} requests"
                )
            await asyncio.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        return state.answer(Received(request.url.path, dict(request.headers), body))

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
    with serve_in_thread(app) as base:
        state.url = f"{base}/hook"
        yield state


async def fix_webhook_secret(gateway: Any, principal: Principal) -> str:
    """Give the account a proper base64 ``whsec_`` secret and return it.

    ``billing.accounts.new_webhook_secret`` uses ``token_urlsafe``, which is not the
    standard base64 the Standard Webhooks libraries decode (about 1 secret in 16
    cannot be used at all); until the trunk fixes it, tests set a valid one.
    """
    secret = new_endpoint_secret()
    async with gateway.services.db.transaction() as conn:
        await account_store.update_account(conn, principal.account_id, webhook_secret=secret)
    return secret
