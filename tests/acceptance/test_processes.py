"""Real processes: API and worker apart, a worker killed mid-job, and the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx

from tests.acceptance.conftest import Served, start_server, stop_server


def _wait(base: str, key: str, video_id: str, *, until: set[str], timeout_s: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/v1/videos/{video_id}", headers={"Authorization": f"Bearer {key}"}).json()
        if body["vidgate_status"] in until:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{video_id} never reached {until}")


def _worker(served: Served, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**served.env, **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "vidgate", "worker", "--data-dir", str(served.data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_killed_worker_is_replaced_and_the_job_finishes_once(tmp_path: Path, database_url: str) -> None:
    env = {"VIDGATE_SIMULATOR_LATENCY_S": "3", "VIDGATE_LEASE_S": "2"}
    api, served = start_server(tmp_path, database_url, extra_env=env, args=("--no-worker",))
    first = second = None
    try:
        key = served.demo_key
        headers = {"Authorization": f"Bearer {key}"}
        video = httpx.post(
            f"{served.base_url}/v1/videos",
            headers=headers,
            json={"model": "sora-2", "prompt": "crash test", "seconds": "4"},
        ).json()
        assert _wait(served.base_url, key, video["id"], until={"queued"})["vidgate_status"] == "queued"
        first = _worker(served, env)
        _wait(served.base_url, key, video["id"], until={"running"})
        first.send_signal(signal.SIGKILL)  # no goodbye: its lease, if any, must lapse
        first.wait(timeout=10)
        second = _worker(served, env)
        done = _wait(served.base_url, key, video["id"], until={"succeeded", "failed", "expired"})
        assert done["vidgate_status"] == "succeeded", done
        ledger = httpx.get(
            f"{served.base_url}/v1/account/ledger", headers=headers, params={"job_id": video["id"]}
        ).json()["data"]
        assert sorted(e["kind"] for e in ledger) == ["capture", "hold"]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        stop_server(api)


def test_cli_keys_models_topup_and_generate(served: Served, tmp_path: Path) -> None:
    created = served.cli("keys", "create", "--account", "cli-co", "--test", "--credit", "3")
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("vg_test_")

    topped = served.cli("accounts", "topup", "--account", "cli-co", "--amount", "2", "--test")
    assert "$5.00" in topped.stdout

    models = subprocess.run(
        [sys.executable, "-m", "vidgate", "models"],
        capture_output=True,
        text=True,
        env=served.env,
        timeout=60,
        check=True,
    )
    assert "kuaishou/kling-v3.0-pro-t2v" in models.stdout and "kling-3-pro" in models.stdout

    out = tmp_path / "clip.mp4"
    env = {**served.env, "VIDGATE_API_KEY": secret, "VIDGATE_BASE_URL": served.base_url}
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidgate",
            "generate",
            "--model",
            "kling-3-pro",
            "--prompt",
            "cli clip",
            "--duration",
            "3",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stderr
    with av.open(str(out)) as container:
        assert abs(container.duration / 1e6 - 3) < 0.2

    failing = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidgate",
            "generate",
            "--model",
            "kling-3-pro",
            "--prompt",
            "simulate:fail",
            "-o",
            str(tmp_path / "no.mp4"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failing.returncode == 1 and "refunded" in failing.stderr

    revoke_id = created.stdout.split()[2]
    served.cli("keys", "revoke", revoke_id)
    assert (
        httpx.get(f"{served.base_url}/v1/videos", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 401
    )


def test_default_start_uses_sqlite_in_the_data_dir_and_serves_docs(tmp_path: Path) -> None:
    """The README's start command: no database configured, everything in the data folder."""
    process, served = start_server(tmp_path, None)
    try:
        spec = httpx.get(f"{served.base_url}/openapi.json").json()
        assert "/v1/videos" in spec["paths"] and "/v1/quotes" in spec["paths"]
        assert httpx.get(f"{served.base_url}/docs").status_code == 200
        assert (served.data_dir / "vidgate.db").exists()
        assert served.demo_key.startswith("vg_test_")
    finally:
        stop_server(process)
    # a second start finds the demo account: the key is not printed again, only where it is kept
    process, again = start_server(tmp_path, None)
    try:
        assert again.demo_key == ""
        kept = served.data_dir / "demo-key.txt"
        assert str(kept.resolve()) in again.log.read_text()
        assert kept.read_text().strip() == served.demo_key
        assert (
            httpx.get(
                f"{again.base_url}/v1/account", headers={"Authorization": f"Bearer {served.demo_key}"}
            ).json()["balance"]
            == "25.00"
        )
    finally:
        stop_server(process)
