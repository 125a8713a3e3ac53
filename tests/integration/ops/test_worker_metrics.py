"""``vidgate worker --metrics-port``: a worker-only process serves /metrics, /healthz and /readyz."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.ops.conftest import Scrape
from vidgate.testing.server import free_port


def test_a_worker_serves_its_metrics_and_readiness_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")} | {
        "VIDGATE_DATA_DIR": str(tmp_path / "data"),
        "VIDGATE_SECRET_KEY": "test-secret",
    }
    vidgate = Path(sys.executable).parent / "vidgate"
    worker = subprocess.Popen(
        [str(vidgate), "worker", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert worker.poll() is None, worker.communicate()
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the worker's metrics port never answered"
                time.sleep(0.1)
        assert ready.status_code == 200, ready.text
        assert {"database", "storage"} <= set(ready.json()["checks"])
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        scrape = Scrape(httpx.get(f"{base}/metrics", timeout=5).text)
        assert scrape.value("vidgate_info", role="worker") == 1
        assert scrape.value("vidgate_store_snapshot_ok") == 1
        assert scrape.value("vidgate_jobs_due") == 0
        assert httpx.get(f"{base}/v1/videos", timeout=5).status_code == 404  # no API in a worker
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, stderr
    assert f"metrics: http://127.0.0.1:{port}/metrics" in stdout
    assert "vidgate worker process stopped" in stderr
