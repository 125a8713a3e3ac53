"""Seed 000's Python quickstart (``requests``) against a real ``vidgate serve``.

The quickstart below is the seed's code as published, with its indentation
restored (the seed page lost it). The test changes only its base URL (by
replacing the ``API`` string) and supplies the key through ``THALAM_KEY`` as the
seed expects. It runs as its own process; a small runner shortens ``time.sleep``
before executing the file unchanged, so the 5-second poll cadence does not make
the test slow.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import httpx

from tests.acceptance.conftest import Served

SEED_BASE_URL = "https://api.thalam.ai/v1"

QUICKSTART = """\
import os, time, requests
API = "https://api.thalam.ai/v1"
headers = {"Authorization": f"Bearer {os.environ['THALAM_KEY']}"}
# 1. Submit
submit = requests.post(
    f"{API}/videos/generations",
    headers=headers,
    json={
        "model": "alibaba/wan-2.5-t2v-preview",
        "prompt": "A drone shot over a desert at golden hour.",
        "duration": 5,
    },
)
task_id = submit.json()["task_id"]
print(f"Submitted: {task_id}")
# 2. Poll
while True:
    poll = requests.get(f"{API}/videos/tasks/{task_id}", headers=headers).json()
    status = poll["task"]["status"]
    if status == "TASK_STATUS_SUCCEED":
        print(f"Video URL: {poll['videos'][0]['video_url']}")
        break
    if status == "TASK_STATUS_FAILED":
        # Balance is automatically refunded — no action needed.
        print(f"Failed: {poll['task'].get('reason', 'unknown')}")
        break
    time.sleep(5)
"""

# Runs the script as __main__ with time.sleep capped at 0.25 s; the script itself is untouched.
RUNNER = """\
import runpy, sys, time
_sleep = time.sleep
time.sleep = lambda seconds: _sleep(min(seconds, 0.25))
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def test_the_seed_quickstart_prints_a_url_that_downloads_an_mp4(served: Served, tmp_path: Path) -> None:
    assert QUICKSTART.count(SEED_BASE_URL) == 1
    script = tmp_path / "quickstart.py"
    script.write_text(QUICKSTART.replace(SEED_BASE_URL, f"{served.base_url}/thalam/v1"), encoding="utf-8")
    env = {**os.environ, "THALAM_KEY": f"tl-{served.demo_key}"}
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert re.search(r"^Submitted: \S+$", run.stdout, re.MULTILINE), run.stdout
    found = re.search(r"^Video URL: (\S+)$", run.stdout, re.MULTILINE)
    assert found, run.stdout
    video = httpx.get(found.group(1), timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    with av.open(io.BytesIO(video.content), mode="r") as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.duration is not None and abs(container.duration / 1e6 - 5) < 0.2
