"""Acceptance fixtures: a real ``vidgate serve`` process on a real port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from vidgate.testing.server import free_port


@dataclass
class Served:
    base_url: str
    data_dir: Path
    demo_key: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vidgate", *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )


def start_server(
    tmp_path: Path,
    database_url: str | None,
    *,
    extra_env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], Served]:
    port = free_port()
    data_dir = tmp_path / "served"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env.update(
        {
            **({"VIDGATE_DATABASE_URL": database_url} if database_url else {}),
            "VIDGATE_SIMULATOR_LATENCY_S": "0.5",
            "VIDGATE_RATE_LIMIT_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = _spawn(port, data_dir, env, out, args)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"vidgate serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"vidgate serve did not come up:\n{log.read_text()}")
        time.sleep(0.1)
    key_line = [line for line in log.read_text().splitlines() if line.strip().startswith("vg_test_")]
    return process, Served(base_url, data_dir, key_line[0].strip() if key_line else "", env, log)


def _spawn(
    port: int, data_dir: Path, env: dict[str, str], out: IO[bytes], args: tuple[str, ...]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidgate",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *args,
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    process, info = start_server(tmp_path, database_url)
    try:
        yield info
    finally:
        stop_server(process)
