"""Hypothesis feeds every route of every dialect hostile bodies, headers, paths and
queries over a real socket: deep nesting, huge and odd numbers, NUL, lone surrogates,
wrong types, broken framing, absurd Range and Content-Type values. Any 5xx, or a
connection the server drops without an answer, fails the test (issue 14).

Every route is found by walking the app (nothing to keep in step by hand), and each
gets a bounded number of examples so the whole run stays well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PG_URL, _admin_url, _pg_execute
from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.config import Settings
from vidgate.runtime.app import create_app
from vidgate.store.engine import open_database
from vidgate.store.migrate import migrate
from vidgate.testing.server import serve_in_thread

EXAMPLES_PER_ROUTE = 14
ADMIN_TOKEN = "fuzz-admin-token"

KEYS = [
    "model",
    "prompt",
    "negative_prompt",
    "duration",
    "seconds",
    "size",
    "resolution",
    "aspect_ratio",
    "image_url",
    "end_image_url",
    "video_url",
    "audio_url",
    "webhook_url",
    "metadata",
    "options",
    "provider_options",
    "extra",
    "seed",
    "queue_id",
    "task_id",
    "file_id",
    "url",
    "events",
    "name",
    "amount",
    "mode",
    "memo",
    "webhookUrl",
    "webhookEvents",
    "klingParams",
    "soraParams",
    "seedanceParams",
    "first_frame_image",
    "reference_image_urls",
    "input_reference",
    "n",
    "limit",
]

HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "🎬" * 200,
    "../../../etc/passwd",
    "http://127.0.0.1:1/",
    "http://169.254.169.254/latest/meta-data/",
    "data:image/png;base64,AAAA",
    "9" * 5000,
    "-9" + "9" * 4400,
    "1e309",
    "NaN",
    "-0",
    "0x1F",
    " ",
    "x" * 300_000,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00%2e%2e%2f",
]
RAW_BODIES = [
    b"",
    b"{",
    b"[" * 5000,
    b'{"a":' * 3000,
    b"\x00\xff\xfe\xfd",
    b'{"duration": ' + b"9" * 5000 + b"}",
    b'{"seconds": -' + b"9" * 4400 + b"}",
    b'{"seed": 1e999, "duration": -1e999}',
    b'{"model": NaN, "prompt": Infinity}',
    b'"just a string"',
    b"null",
    b"[]",
    b"123",
    b'{"prompt": "\\ud800\\udfff\\ud800"}',
    b"\xef\xbb\xbf{}",
    b'{"prompt": "p", "prompt": 1}',
    b'--b\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n' + b"[" * 2000 + b"\r\n--b--\r\n",
    b'--b\r\nContent-Disposition: form-data; name="input_reference"; filename="x.png"\r\n\r\nnot png\r\n--b--\r\n',
]
RANGES = [
    None,
    "bytes=" + "9" * 5000 + "-",
    "bytes=0-" + "9" * 5000,
    "bytes=-" + "9" * 5000,
    "bytes=5-1",
    "bytes=\xb2-\xb3",
    "bytes=0-0,1-1,2-2",
    "bytes=",
]
CONTENT_TYPES = [
    None,
    "application/json",
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-32",
]

HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=16,
)


@dataclass(frozen=True)
class Served:
    base_url: str
    key: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _routes(app: FastAPI) -> list[Route]:
    """Every (method, path template) the app serves, included routers and all."""
    found: list[Route] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:  # an included router
                walk(list(inner.routes), prefix + (getattr(route.include_context, "prefix", "") or ""))
            elif getattr(route, "methods", None) and hasattr(route, "path"):
                found.extend(Route(m, prefix + route.path) for m in sorted(route.methods) if m != "HEAD")
            elif hasattr(route, "routes"):
                walk(list(route.routes), prefix + getattr(route, "path", ""))

    walk(list(app.routes), "")
    return found


async def _funded_key(config: Settings) -> str:
    db = open_database(config)
    try:
        await migrate(db)
        async with db.transaction() as conn:
            account = await ensure_account(conn, "fuzz")
            issued = await issue_key(conn, account, mode="test")
            await top_up(conn, account, micros=1_000_000_000, mode="test")
        return issued.secret
    finally:
        await db.dispose()


def _config(tmp: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=database_url,
        secret_key="fuzz-secret",
        admin_token=ADMIN_TOKEN,
        rate_limit_per_minute=0,
        simulator_latency_s=0.2,
        max_body_bytes=2 * 1024 * 1024,
        body_idle_timeout_s=2.0,
    )


APP_ROUTES = _routes(create_app(_config(Path("/nonexistent")), run_worker=False, env={}))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server, on PostgreSQL when ``VIDGATE_TEST_DATABASE_URL`` says so (NUL bytes and
    lone surrogates are refused there, so both stores must be fuzzed)."""
    name = f"vg_fuzz_{uuid.uuid4().hex[:10]}"
    database_url = _admin_url(PG_URL, name) if PG_URL else None
    if PG_URL:
        asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}"'))
    try:
        config = _config(tmp_path_factory.mktemp("hostile"), database_url)
        key = asyncio.run(_funded_key(config))
        app = create_app(config, run_worker=False, env={})
        with serve_in_thread(app) as base:
            yield Served(base, key)
    finally:
        if PG_URL:
            asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _auth(path: str, key: str, choice: int, junk: str) -> dict[str, str]:
    prefix = "tl-" if path.startswith("/thalam") else "ky-" if path.startswith("/kyma") else ""
    if path.startswith("/admin"):
        good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    elif path.startswith("/apiframe"):
        good = {"X-API-Key": f"afk_{key}"}
    else:
        good = {"Authorization": f"Bearer {prefix}{key}"}
    return [good, good, {}, {"Authorization": f"Bearer {junk}"}, {"X-API-Key": junk, "Authorization": junk}][
        choice
    ]


def _quoted(text: str) -> str:
    """Percent-encoded UTF-8, lone surrogates included (as a careless client would send them)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def hostile_requests(draw: st.DrawFn, route: Route, key: str) -> tuple[str, str, dict[str, str], bytes]:
    path = route.path
    for name in [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]:
        segment = draw(st.sampled_from(["job_0", "0", "x" * 300, "..", "%00", "🎬"]) | st.text(max_size=30))
        path = path.replace(
            next(p for p in route.path.split("/") if p.startswith("{" + name)), _quoted(segment)
        )
    query = draw(
        st.dictionaries(
            st.sampled_from(KEYS) | st.text(max_size=8),
            st.sampled_from(HOSTILE_TEXT[:15]) | st.text(max_size=20),
            max_size=3,
        )
    )
    url = path + ("?" + "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in query.items()) if query else "")
    headers = _auth(route.path, key, draw(st.integers(0, 4)), draw(HEADER_TEXT))
    if (range_value := draw(st.sampled_from(RANGES))) is not None:
        headers["Range"] = range_value
    if (content_type := draw(st.sampled_from(CONTENT_TYPES))) is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(HEADER_TEXT)
    kind = draw(st.integers(0, 2))
    if kind == 0:
        body = draw(st.sampled_from(RAW_BODIES))
    elif kind == 1:
        body = json.dumps(draw(json_values)).encode()
    else:
        fields = draw(st.dictionaries(st.sampled_from(KEYS), json_values, min_size=1, max_size=8))
        fields.setdefault("prompt", "a lighthouse")
        body = json.dumps(fields).encode()
    return route.method, url, headers, body


@pytest.mark.parametrize("route", APP_ROUTES, ids=[r.id for r in APP_ROUTES])
def test_no_hostile_request_gets_a_server_error(served: Served, route: Route) -> None:
    failures: list[str] = []
    with httpx.Client(base_url=served.base_url, timeout=30) as client:

        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(request=hostile_requests(route, served.key))
        def check(request: tuple[str, str, dict[str, str], bytes]) -> None:
            method, url, headers, body = request
            try:
                raw_headers = {k: v.strip().encode("latin-1") for k, v in headers.items()}
                response = client.request(method, url, headers=raw_headers, content=body or None)
            except httpx.TransportError as exc:
                failures.append(f"{method} {url[:120]}: no answer ({exc!r})")
                return
            if response.status_code >= 500:
                failures.append(
                    f"{method} {url[:120]} -> {response.status_code}: {response.text[:200]}"
                    f" (headers {headers!r:.300}, body {body[:300]!r})"
                )

        check()
    assert not failures, "\n".join(failures[:10])


def test_every_dialect_is_fuzzed() -> None:
    prefixes = {
        "/v1",
        "/thalam",
        "/venice",
        "/minimax",
        "/apiframe",
        "/kyma",
        "/admin",
        "/media",
        "/callbacks",
    }
    covered = {p for p in prefixes if any(r.path.startswith(p) for r in APP_ROUTES)}
    assert covered == prefixes and len(APP_ROUTES) > 40
