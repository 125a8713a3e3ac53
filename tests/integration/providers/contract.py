"""What the provider contract suite knows per provider: its fake, adapter, a request it
accepts, and where its poll answer keeps the status word.

Everything runs in process: the adapter's ``httpx.AsyncClient`` talks to the fake's ASGI
app through ``httpx.ASGITransport``, wrapped in ``FaultTransport`` so a test can make
the network itself fail (a connect error, a read timeout after the request was sent)
or rewrite a poll answer's status word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.providers import (
    test_ark,
    test_comfyui,
    test_dashscope,
    test_fal,
    test_gemini,
    test_kling,
    test_luma,
    test_minimax,
    test_openai_compat,
    test_replicate,
    test_runway,
    test_vertex,
    test_xai,
)
from vidgate.domain.request import GenerationRequest
from vidgate.providers.base import MinimalAdapter, ProviderContext, Route
from vidgate.providers.registry import PROVIDERS, adapter_factory
from vidgate.testing.fake import FakeScript, FakeUpstream
from vidgate.testing.fakes import fake_class


@dataclass(frozen=True)
class Case:
    """One provider as the contract suite drives it."""

    name: str
    route: Route
    req: GenerationRequest
    api_key: str = "test-key"
    fake_options: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    status_path: tuple[str | int, ...] | None = None  # where a poll answer keeps its status word
    has_auth: bool = True

    def fake(self, latency_s: float = 0.15) -> FakeUpstream:
        return fake_class(self.name)(
            api_key=self.api_key, script=FakeScript(latency_s=latency_s), **self.fake_options
        )

    def adapter(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None = None,
        callback_url: str | None = None,
    ) -> MinimalAdapter:
        ctx = ProviderContext(
            http=http,
            api_key=api_key or self.api_key,
            base_url=base_url,
            options=dict(self.options),
            callback_url=callback_url,
            timeout_s=5.0,
            submit_timeout_s=5.0,
            user_http=http,
        )
        return adapter_factory(self.name)(ctx)


CASES: tuple[Case, ...] = (
    Case("ark", test_ark.ROUTE, test_ark.REQ, status_path=("status",)),
    Case("comfyui", test_comfyui.LTX, test_comfyui.REQ),
    Case("dashscope", test_dashscope.ROUTE, test_dashscope.REQ, status_path=("output", "task_status")),
    Case("fal", test_fal.KLING, test_fal.REQ, status_path=("status",)),
    Case("gemini", test_gemini.ROUTE, test_gemini.REQ),
    Case(
        "kling",
        test_kling.ROUTE,
        test_kling.REQ,
        api_key="ak-test",
        fake_options={"secret_key": test_kling.SECRET},
        options={"secret_key": test_kling.SECRET},
        status_path=("data", "task_status"),
    ),
    Case("luma", test_luma.ROUTE, test_luma.REQ, status_path=("state",)),
    Case("minimax", test_minimax.ROUTE, test_minimax.REQ, status_path=("status",)),
    Case("openai", test_openai_compat.SORA, test_openai_compat.REQ, status_path=("status",)),
    Case("replicate", test_replicate.KLING, test_replicate.REQ, status_path=("status",)),
    Case("runway", test_runway.ROUTE, test_runway.REQ, status_path=("status",)),
    Case(
        "vertex",
        test_vertex.ROUTE,
        test_vertex.REQ,
        api_key="ya29.test-token",
        options={"project": "proj-1", "location": "us-central1"},
    ),
    Case("xai", test_xai.ROUTE, test_xai.REQ, status_path=("status",)),
)
assert {c.name for c in CASES} == set(PROVIDERS) - {"simulator"}, "every provider has a contract case"


# request -> (the exception to raise, whether the request reaches the upstream first), or None
Fault = Callable[[httpx.Request], tuple[Exception, bool] | None]


class FaultTransport(httpx.AsyncBaseTransport):
    """The fake's ASGI app as a transport, with network faults and answer rewrites on demand."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.fault: Fault | None = None  # an exception to raise instead of exchanging
        self.status_word: tuple[tuple[str | int, ...], str] | None = None  # (path, word) for GETs/polls
        self.submit_path: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        planned = self.fault(request) if self.fault is not None else None
        if planned is not None and not planned[1]:
            raise planned[0]  # never sent: nothing reached the upstream
        response = await self._inner.handle_async_request(request)
        if planned is not None:
            await response.aread()  # the upstream did the work; the answer is lost
            raise planned[0]
        if self.status_word is None or request.method == "POST":
            return response
        raw = await response.aread()
        try:
            body = json.loads(raw)
        except ValueError:
            return httpx.Response(response.status_code, headers=response.headers, content=raw)
        path, word = self.status_word
        node = body
        for step in path[:-1]:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            node[path[-1]] = word
        content = json.dumps(body).encode()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, content=content)


def on_first_post(error: Exception, *, sent: bool) -> Fault:
    """Raise ``error`` for the first POST only (a submit), after the upstream handled it
    when ``sent``, then exchange normally."""
    fired: list[bool] = []

    def fault(request: httpx.Request) -> tuple[Exception, bool] | None:
        if request.method == "POST" and not fired:
            fired.append(True)
            return error, sent
        return None

    return fault
