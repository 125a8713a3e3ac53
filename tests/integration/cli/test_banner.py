"""``vidgate serve``'s banner: printed once the port is listening (so its URL answers at
once), with the demo key on the first start only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vidgate import __version__


def start_and_read_banner(data_dir: Path) -> tuple[list[str], str]:
    """Start ``vidgate serve --port 0``, read its output up to the banner's second line,
    ask the banner's URL for the model list at once, then stop the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "vidgate", "serve", "--port", "0", "--data-dir", str(data_dir)],
        env={**env, "PYTHONUNBUFFERED": "1", "VIDGATE_LOG_LEVEL": "warning"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("playground:" in line for line in lines):
            assert time.monotonic() < deadline, lines
            line = process.stdout.readline()
            assert line, f"vidgate serve ended early: {lines}"
            lines.append(line.rstrip("\n"))
        banner = next(line for line in lines if line.startswith(f"vidgate {__version__}:"))
        base = re.search(r"on (http://\S+)", banner)
        assert base, banner
        # The banner comes after the socket listens: its URL answers without a retry.
        answer = httpx.get(f"{base.group(1)}/v1/models", timeout=30)
        assert answer.status_code == 200
        process.terminate()
        process.wait(timeout=30)
        lines += process.stdout.read().splitlines()  # what the reader had buffered, and the rest
        return lines, base.group(1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()


def test_banner_after_listening_and_the_demo_key_on_the_first_start_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first, _ = start_and_read_banner(data_dir)
    keys = [line.strip() for line in first if line.strip().startswith("vg_test_")]
    assert len(keys) == 1, first
    assert (data_dir / "demo-key.txt").read_text().strip() == keys[0]

    again, _ = start_and_read_banner(data_dir)
    assert not [line for line in again if "vg_test_" in line], again
    assert any(str((data_dir / "demo-key.txt").resolve()) in line for line in again), again
