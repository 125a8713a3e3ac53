"""The access layer: a request id on every answer, one access line per request, and the
health routes; over the in-process app and over a real socket."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from tests.conftest import Gateway, auth
from vidgate.config import Settings
from vidgate.runtime.app import create_app
from vidgate.testing.server import serve_in_thread


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "vidgate.access"]


async def test_every_answer_carries_a_request_id_and_one_access_line(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    key, principal = await gateway.account()
    caplog.set_level(logging.DEBUG, logger="vidgate.access")
    ok = await gateway.client.get("/v1/videos", headers=auth(key))
    missing = await gateway.client.get("/v1/videos/video_nope", headers=auth(key))
    unrouted = await gateway.client.get("/no/such/route/42")
    unauthenticated = await gateway.client.get("/thalam/v1/videos/tasks/abc")
    answers = [ok, missing, unrouted, unauthenticated]
    ids = [r.headers.get("x-request-id") for r in answers]
    assert all(i and re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)

    lines = _access(caplog)
    assert [r.request_id for r in lines] == ids  # type: ignore[attr-defined]
    first = lines[0]
    assert (first.method, first.route, first.status, first.account) == (  # type: ignore[attr-defined]
        "GET",
        "/v1/videos",
        200,
        principal.account_id,
    )
    assert first.ms >= 0  # type: ignore[attr-defined]
    assert lines[1].route == "/v1/videos/{video_id}" and lines[1].status == 404  # type: ignore[attr-defined]
    assert lines[2].route == "<unmatched>" and lines[2].status == 404  # type: ignore[attr-defined]
    assert lines[3].account is None and lines[3].dialect == "thalam"  # type: ignore[attr-defined]
    assert lines[3].route == "/thalam/v1/videos/tasks/{task_id}"  # type: ignore[attr-defined]
    assert "video_nope" not in lines[1].getMessage()  # the template, not the raw path


async def test_a_sane_request_id_from_a_proxy_is_kept_and_a_bad_one_replaced(gateway: Gateway) -> None:
    kept = await gateway.client.get("/healthz", headers={"X-Request-ID": "edge-7f3a:42.b_c"})
    assert kept.headers["x-request-id"] == "edge-7f3a:42.b_c"
    for bad in ("has space", "x" * 129, "new\\nline", "é"):
        answer = await gateway.client.get("/healthz", headers={"X-Request-ID": bad.encode()})
        assert answer.headers["x-request-id"].startswith("req_"), bad
    # A handler's own id (Apiframe's dialect sets one) is replaced: one id per request.
    apiframe = await gateway.client.get("/apiframe/v2/models", headers={"X-Request-ID": "proxy-1"})
    assert apiframe.headers.get_list("x-request-id") == ["proxy-1"]


async def test_answers_made_before_routing_are_counted_with_their_template(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A 413 from the body-size layer happens before routing; it still has a template and an id."""
    app = create_app(settings.model_copy(update={"max_body_bytes": 1000}), run_worker=False, env={})
    caplog.set_level(logging.INFO, logger="vidgate.access")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            big = await client.post(
                "/v1/videos", content=b"x" * 5000, headers={"content-type": "application/json"}
            )
            metrics = (await client.get("/metrics")).text
    assert big.status_code == 413 and big.headers["x-request-id"].startswith("req_")
    line = _access(caplog)[0]
    assert (line.route, line.status) == ("/v1/videos", 413)  # type: ignore[attr-defined]
    assert 'route="/v1/videos",status="413"' in metrics


async def test_healthz_touches_nothing_and_readyz_names_its_checks(gateway: Gateway) -> None:
    health = await gateway.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert {"database", "storage"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values())


async def test_readyz_fails_when_the_media_folder_is_unusable(gateway: Gateway, settings: Settings) -> None:
    media = settings.data_dir / "media"
    assert not media.exists()  # nothing written yet
    media.write_text("a file where the media folder should be")
    broken = await gateway.client.get("/readyz")
    media.unlink()
    again = await gateway.client.get("/readyz")
    assert broken.status_code == 503
    body = broken.json()
    assert body["failed"] == ["storage"] and body["status"] == "unavailable"
    assert "not a writable folder" in body["checks"]["storage"]["error"]
    assert body["checks"]["database"]["ok"] is True
    assert again.status_code == 200


def test_the_routes_answer_over_a_real_socket(settings: Settings) -> None:
    """uvicorn, a real port: the id, /readyz and /metrics as a scraper sees them."""
    app = create_app(settings, run_worker=False, env={})
    with serve_in_thread(app) as base:
        ready = httpx.get(f"{base}/readyz", timeout=10)
        metrics = httpx.get(f"{base}/metrics", timeout=10)
        head = httpx.head(f"{base}/healthz", timeout=10)
    assert ready.status_code == 200 and ready.headers["x-request-id"]
    assert metrics.status_code == 200 and "vidgate_http_requests_total{" in metrics.text
    assert 'route="/readyz"' in metrics.text
    assert head.status_code == 200


async def test_an_unexpected_error_is_a_logged_500_with_a_request_id(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, run_worker=False, env={})

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/boom", boom, methods=["GET"])
    caplog.set_level(logging.INFO, logger="vidgate.access")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/v1/boom", headers={"X-Request-ID": "trace-1"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "trace-1"
    assert answer.json()["error"]["code"] == "internal_error"
    line = _access(caplog)[-1]
    assert (line.route, line.status, line.request_id) == ("/v1/boom", 500, "trace-1")  # type: ignore[attr-defined]
