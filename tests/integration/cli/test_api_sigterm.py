"""SIGTERM to an API process (``vidgate serve --no-worker``): it stops accepting, lets
the requests in flight finish, and exits 0 (issue 11).

The request in flight is a client downloading a stored video slower than the server
can send it: the server is mid-response (the headers are in, most of the body is not)
when the signal comes, which is what a rolling redeploy does to real downloads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import Gateway, auth
from vidgate.config import Settings
from vidgate.media.storage import LocalStorage

VIDEO_BYTES = 48 * 1024 * 1024  # far more than the loopback socket buffers hold
GRACE_S = 20  # timeout_graceful_shutdown in ``vidgate serve``


async def a_stored_video(gateway: Gateway) -> tuple[str, str, str]:
    """A finished job whose stored video is VIDEO_BYTES long: (key, job id, sha256)."""
    key, _ = await gateway.account()
    body = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4"}
    created = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    done = await gateway.wait_terminal(f"/v1/videos/{video_id}", key)
    assert done["vidgate_status"] == "succeeded", done
    storage = gateway.services.storage
    assert isinstance(storage, LocalStorage)
    stored = [p for p in storage.root.rglob("*.mp4") if video_id in str(p)]
    assert len(stored) == 1, stored
    digest = hashlib.sha256()
    with stored[0].open("wb") as out:  # the same key, a much bigger file
        block = os.urandom(1024 * 1024)
        for _ in range(VIDEO_BYTES // len(block)):
            out.write(block)
            digest.update(block)
    return key, video_id, digest.hexdigest()


def start_api(settings: Settings) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "VIDGATE_LOG_LEVEL": "warning",
        "VIDGATE_DATABASE_URL": settings.resolved_database_url,
        "VIDGATE_SECRET_KEY": str(settings.secret_key),
        "VIDGATE_RATE_LIMIT_PER_MINUTE": "0",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidgate",
            "serve",
            "--no-worker",
            "--port",
            "0",
            "--data-dir",
            str(settings.data_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while not any("playground:" in line for line in lines):
        assert time.monotonic() < deadline, lines
        line = process.stdout.readline()
        assert line, f"vidgate serve ended early: {lines}"
        lines.append(line.rstrip("\n"))
    found = re.search(r"on (http://\S+)", "\n".join(lines))
    assert found, lines
    return process, found.group(1)


def refused(base: str) -> bool:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def download_across_sigterm(settings: Settings, key: str, video_id: str) -> tuple[int, int, str, int | None]:
    """Start the download, SIGTERM the server, check new connections are refused, then
    read the rest: (status, bytes read, sha256, the server's exit status)."""
    process, base = start_api(settings)
    try:
        digest, read = hashlib.sha256(), 0
        with (
            httpx.Client(base_url=base, timeout=30) as client,
            client.stream("GET", f"/v1/videos/{video_id}/content", headers=auth(key)) as answer,
        ):
            status = answer.status_code
            chunks = answer.iter_raw(64 * 1024)
            first = next(chunks)  # the response is under way
            digest.update(first)
            read += len(first)

            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while not refused(base):  # the listening socket closes at once
                assert time.monotonic() < deadline, "still accepting connections 10 s after SIGTERM"
                time.sleep(0.05)
            assert process.poll() is None, "the server exited with a download in flight"

            for chunk in chunks:
                digest.update(chunk)
                read += len(chunk)
        try:
            code: int | None = process.wait(timeout=GRACE_S + 15)
        except subprocess.TimeoutExpired:
            code = None
        return status, read, digest.hexdigest(), code
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


async def test_sigterm_drains_the_download_in_flight_and_exits_0(
    gateway: Gateway, settings: Settings
) -> None:
    key, video_id, sha = await a_stored_video(gateway)
    status, read, got, code = await asyncio.to_thread(download_across_sigterm, settings, key, video_id)
    assert status == 200
    assert read == VIDEO_BYTES
    assert got == sha
    assert code == 0
