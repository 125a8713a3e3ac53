"""``VIDGATE_LOG_FORMAT=json``: every line a JSON object, job lines carry the job's fields,
secrets masked; in-process (precise) and through a real ``vidgate serve`` (every line)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Gateway, auth
from tests.integration.delivery.conftest import Receiver
from vidgate.logs import make_handler
from vidgate.testing.server import free_port


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything the root logger emits during the test, as the JSON format writes it."""
    buffer = io.StringIO()
    handler = make_handler("json", buffer)
    root, client = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, client.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    client.setLevel(
        logging.WARNING
    )  # as ``vidgate.logs.configure`` does (and these are the test's own calls)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        client.setLevel(levels[1])


def _parse(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # raises on any line that is not JSON


async def test_every_line_of_a_jobs_life_is_json_and_the_job_lines_carry_its_id(
    gateway: Gateway, receiver: Receiver, json_lines: io.StringIO
) -> None:
    key, principal = await gateway.account()
    created = await gateway.client.post(
        "/v1/videos",
        headers=auth(key),
        json={"model": "sora-2", "prompt": "a lighthouse", "seconds": "4", "webhook_url": receiver.url},
    )
    job_id = created.json()["id"]
    await gateway.wait_terminal(f"/v1/videos/{job_id}", key)
    await receiver.wait_for(lambda r: bool(r.of_type("video.completed")))

    def webhook_lines() -> list[dict[str, Any]]:
        return [e for e in _parse(json_lines.getvalue()) if e["logger"] == "vidgate.webhooks.sender"]

    deadline = time.monotonic() + 20
    while len(webhook_lines()) < len(receiver.delivered()):  # the sender logs after recording
        assert time.monotonic() < deadline, "the sender never logged its deliveries"
        await asyncio.sleep(0.05)

    entries = _parse(json_lines.getvalue())
    assert entries, "nothing was logged"
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    about_job = [e for e in entries if job_id in e["message"] or e.get("job_id") == job_id]
    assert about_job
    assert all(e.get("job_id") == job_id for e in about_job), about_job
    delivered = [e for e in about_job if e["logger"] == "vidgate.webhooks.sender"]
    assert delivered and all(e["account"] == principal.account_id for e in delivered)
    access = [e for e in entries if e["logger"] == "vidgate.access"]
    assert any(e["route"] == "/v1/videos" and e["status"] == 200 for e in access)
    assert all(e["request_id"].startswith("req_") for e in access)


async def test_each_step_of_a_job_is_an_info_line_with_the_job_fields(
    gateway: Gateway, json_lines: io.StringIO
) -> None:
    """accepted, submitted upstream, completed, settled: each an INFO line with job_fields(job)."""
    key, principal = await gateway.account()
    created = await gateway.client.post(
        "/v1/videos", headers=auth(key), json={"model": "sora-2", "prompt": "a lighthouse", "seconds": "4"}
    )
    job_id = created.json()["id"]
    await gateway.wait_terminal(f"/v1/videos/{job_id}", key)
    steps = [
        e
        for e in _parse(json_lines.getvalue())
        if e.get("job_id") == job_id and e["level"] == "INFO" and e["logger"] != "vidgate.webhooks.sender"
    ]
    assert len(steps) >= 4, steps  # accepted, submitted, completed, settled
    assert all({"job_id", "account", "provider", "upstream_id"} <= set(e) for e in steps)
    assert all(e["account"] == principal.account_id for e in steps)
    assert any(e["upstream_id"] for e in steps) and any(e["provider"] for e in steps)


def test_secrets_are_masked_in_the_json_format() -> None:
    buffer = io.StringIO()
    logger = logging.getLogger("vidgate.test.jsonredaction")
    logger.propagate = False
    logger.addHandler(make_handler("json", buffer))
    logger.setLevel(logging.INFO)
    key = "vg_live_" + "s" * 40
    try:
        logger.info("called with %s", key, extra={"job_id": "video_1", "url": f"https://x.test/?token={key}"})
        try:
            raise RuntimeError(f"boom {key}")
        except RuntimeError:
            logger.exception("failed", extra={"job_id": "video_1"})
    finally:
        logger.handlers.clear()
    assert key not in buffer.getvalue()
    first, second = _parse(buffer.getvalue())
    assert first["message"] == "called with vg_live_[REDACTED]"
    assert first["job_id"] == "video_1" and "[REDACTED]" in first["url"]
    assert second["level"] == "ERROR" and "RuntimeError: boom vg_live_[REDACTED]" in second["exception"]


def test_the_text_format_shows_the_job_fields() -> None:
    buffer = io.StringIO()
    logger = logging.getLogger("vidgate.test.textfields")
    logger.propagate = False
    logger.addHandler(make_handler("text", buffer))
    logger.setLevel(logging.INFO)
    try:
        logger.info("completed", extra={"job_id": "video_9", "account": "acct_1", "provider": None})
    finally:
        logger.handlers.clear()
    assert buffer.getvalue().rstrip().endswith("completed [job_id=video_9 account=acct_1]")


def test_a_real_server_writes_only_json_lines_and_says_when_it_stops(tmp_path: Path) -> None:
    """``vidgate serve`` with VIDGATE_LOG_FORMAT=json: a job, then SIGTERM; every stderr line is JSON."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")} | {
        "VIDGATE_LOG_FORMAT": "json",
        "VIDGATE_DATA_DIR": str(tmp_path / "data"),
        "VIDGATE_SIMULATOR_LATENCY_S": "0.3",
        "VIDGATE_WORKER_POLL_INTERVAL_S": "0.05",
        "VIDGATE_SECRET_KEY": "test-secret",
    }
    vidgate = Path(sys.executable).parent / "vidgate"
    server = subprocess.Popen(
        [str(vidgate), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        key = (tmp_path / "data" / "demo-key.txt").read_text().strip()
        created = httpx.post(
            f"{base}/v1/videos",
            headers=auth(key),
            json={"model": "sora-2", "prompt": "a lighthouse", "seconds": "4"},
            timeout=10,
        )
        assert created.status_code == 200, created.text
        job_id = created.json()["id"]
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/v1/videos/{job_id}", headers=auth(key), timeout=10).json()["status"] in (
            "queued",
            "in_progress",
        ):
            assert time.monotonic() < deadline, "the job never finished"
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    entries = _parse(stderr)
    messages = [e["message"] for e in entries]
    assert any(e["logger"] == "vidgate.access" and e.get("route") == "/v1/videos" for e in entries)
    assert any("process stopped" in m for m in messages), messages
    about_job = [e for e in entries if job_id in e["message"]]
    assert all(e.get("job_id") == job_id for e in about_job), about_job


def _wait_ready(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, server.communicate()[1]
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server never became ready"
        time.sleep(0.1)
