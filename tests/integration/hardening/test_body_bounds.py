"""No body makes a 500: nested JSON, bodies over the limit (chunked or not), slow and
incomplete bodies, on every route that reads a body, over a real socket (issue 14)."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.hardening.conftest import (
    MB,
    POST_ROUTES,
    Served,
    chunked,
    exchange,
    rendered,
)
from vidgate.api.limits import JsonDepth, RequestTimeout, TooDeep
from vidgate.errors import PayloadTooLarge

NESTED = b'{"prompt":"p","model":' + b"[" * 1000 + b"]" * 1000 + b"}"
TOO_DEEP = TooDeep("the request body nests JSON deeper than 64 levels")
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "content_type", ["application/json", "multipart/form-data; boundary=b", "text/plain"]
)  # handlers read JSON whatever the label says, so a mislabelled body is scanned as JSON too
@pytest.mark.parametrize("path", POST_ROUTES)
def test_deeply_nested_json_is_a_400_in_the_dialect(served: Served, path: str, content_type: str) -> None:
    headers = {**served.auth_headers(path), "Content-Type": content_type, "Content-Length": str(len(NESTED))}
    answer = exchange(served, path, headers, [NESTED])
    assert answer is not None
    if content_type != "application/json" and answer.status == 415:
        return  # a dialect that refuses the label before reading (Venice) is fine too
    assert (answer.status, answer.json) == rendered(path, TOO_DEEP)


@pytest.mark.parametrize("field", ["metadata", "options", "provider_options"])
def test_deeply_nested_json_in_a_native_multipart_field_is_a_400(served: Served, field: str) -> None:
    boundary = "hardeningboundary"
    parts = [("model", b"sora-2"), ("prompt", b"a lighthouse"), (field, b"[" * 1000 + b"]" * 1000)]
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
            for name, value in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    headers = {
        **served.auth_headers("/v1/videos"),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body)),
    }
    answer = exchange(served, "/v1/videos", headers, [body])
    assert answer is not None
    assert (answer.status, answer.json) == rendered("/v1/videos", TOO_DEEP)


def test_a_file_part_full_of_brackets_is_not_nesting(served: Served) -> None:
    boundary = "filesboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nsora-2\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\np\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="input_reference"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"[{" * 5000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        **served.auth_headers("/v1/videos"),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(body)),
    }
    answer = exchange(served, "/v1/videos", headers, [body])
    assert answer is not None and answer.status == 400  # not an image, but not "too deep"
    assert b"json_too_deep" not in answer.body


def test_brackets_inside_strings_and_files_are_not_nesting(served: Served) -> None:
    prompt = json.dumps({"model": "sora-2", "prompt": "[" * 500 + '\\"{' * 200, "seconds": "4"}).encode()
    headers = {**served.auth_headers("/v1/videos"), **JSON, "Content-Length": str(len(prompt))}
    answer = exchange(served, "/v1/videos", headers, [prompt])
    assert answer is not None and answer.status < 500
    assert b"json_too_deep" not in answer.body


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_chunked_body_over_the_limit_is_413_in_the_dialect(served: Served, path: str) -> None:
    parts = [b'{"prompt":"' + b"x" * (64 * 1024)] + [b"x" * (64 * 1024)] * 24  # 1.6 MB, no length
    headers = {**served.auth_headers(path), **JSON, "Transfer-Encoding": "chunked"}
    answer = exchange(served, path, headers, chunked(parts))
    assert answer is not None
    too_large = PayloadTooLarge("the request body is larger than the 1 MB limit")
    assert (answer.status, answer.json) == rendered(path, too_large)
    assert answer.headers.get("connection") == "close"


@pytest.mark.parametrize("path", POST_ROUTES)
def test_a_declared_length_over_the_limit_or_absurd_is_413(served: Served, path: str) -> None:
    headers = {**served.auth_headers(path), **JSON, "Content-Length": str(2 * MB)}
    answer = exchange(served, path, headers, [b"{}"])
    assert answer is not None and answer.status == 413
    # 5,000 digits: the HTTP parser itself refuses it (400) before any app code runs.
    headers["Content-Length"] = "9" * 5000
    answer = exchange(served, path, headers, [b"{}"])
    assert answer is not None and answer.status in (400, 413)


def test_a_stalled_body_gets_408_on_every_route(served: Served) -> None:
    """Ten bytes of a hundred, then nothing: each route answers 408 after the 1 s idle bound."""

    def stall(path: str) -> tuple[str, int, object, float]:
        headers = {**served.auth_headers(path), **JSON, "Content-Length": "100"}
        started = time.monotonic()
        answer = exchange(served, path, headers, [b'{"prompt":'], timeout_s=15)
        assert answer is not None
        return path, answer.status, answer.json, time.monotonic() - started

    with ThreadPoolExecutor(len(POST_ROUTES)) as pool:
        results = list(pool.map(stall, POST_ROUTES))
    timeout = RequestTimeout("the request body was not received in time")
    for path, status, body, took in results:
        assert (status, body) == rendered(path, timeout), path
        assert 0.9 < took < 8, (path, took)


def test_a_trickled_body_is_cut_off_by_the_total_bound(served: Served) -> None:
    """A byte every half second never trips the idle bound; the 3 s total bound ends it."""

    def trickle() -> object:
        for _ in range(40):
            time.sleep(0.5)
            yield b" "

    headers = {**served.auth_headers("/v1/videos"), **JSON, "Content-Length": "1000"}
    started = time.monotonic()
    answer = exchange(served, "/v1/videos", headers, trickle(), timeout_s=15)  # type: ignore[arg-type]
    assert answer is not None and answer.status == 408
    assert 2.5 < time.monotonic() - started < 8


def test_a_client_that_leaves_mid_body_is_logged_at_debug_only(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in POST_ROUTES:
        headers = {**served.auth_headers(path), **JSON, "Content-Length": "5000"}
        exchange(served, path, headers, [b'{"prompt":"half'], then_close=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [r for r in caplog.records if "left mid-body" in r.getMessage()]
        if len(left) >= len(POST_ROUTES):
            break
        time.sleep(0.05)
    assert len(left) >= len(POST_ROUTES), [r.getMessage() for r in caplog.records][-20:]
    assert all(r.levelno == logging.DEBUG for r in left)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [(r.name, r.getMessage(), r.exc_text) for r in problems]


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_tricky_text = st.text(alphabet='[]{}"\\ab', max_size=12)
_json = st.recursive(
    st.none() | st.integers() | _tricky_text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_tricky_text, c, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    value=_json, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8), limit=st.integers(1, 6)
)
def test_the_depth_scanner_agrees_with_json_whatever_the_chunking(
    value: object, cuts: list[int], limit: int
) -> None:
    """Brackets and escaped quotes inside strings, split anywhere across chunks, never count."""
    text = json.dumps(value).encode()
    scanner = JsonDepth(limit)
    edges = [0, *sorted(c for c in cuts if c < len(text)), len(text)]
    verdict = all(scanner.feed(text[a:b]) for a, b in pairwise(edges))
    assert verdict == (_depth(value) <= limit)
