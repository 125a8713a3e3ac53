"""``check()`` and ``vidgate providers check``: prove credentials without buying anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.providers.contract import CASES, Case
from vidgate.providers.base import UpstreamAuthError
from vidgate.testing.fakes.luma import LumaFake
from vidgate.testing.server import serve_in_thread

BASE = "http://fake.test"
CHECKED = [c for c in CASES if c.name in ("kling", "luma", "comfyui")]


@pytest.mark.parametrize("case", CHECKED, ids=[c.name for c in CHECKED])
async def test_check_proves_the_key_and_creates_nothing(case: Case) -> None:
    fake = case.fake()
    fake.base_url = BASE
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app())) as http:
        assert await case.adapter(http, BASE).check() is True
        assert fake.submissions() == []
        if case.has_auth and case.name != "comfyui":  # ComfyUI's own server has no auth
            with pytest.raises(UpstreamAuthError):
                await case.adapter(http, BASE, api_key="wrong-key").check()


async def test_an_upstream_without_a_cheap_call_is_not_checked() -> None:
    (fal,) = [c for c in CASES if c.name == "fal"]
    async with httpx.AsyncClient() as http:
        assert await fal.adapter(http, "http://unused.test").check() is False  # and no call made


def run_check(
    tmp_path: Path, base_url: str, key: str, *, setting: str = "API_KEY"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")}
    env |= {
        "VIDGATE_DATA_DIR": str(tmp_path),
        f"VIDGATE_LUMA_{setting}": key,
        "VIDGATE_LUMA_BASE_URL": base_url,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "vidgate", "providers", "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_providers_check_command(tmp_path: Path) -> None:
    fake = LumaFake()
    with serve_in_thread(fake.app()) as base_url:
        fake.base_url = base_url
        good = run_check(tmp_path, base_url, "test-key")
        bad = run_check(tmp_path, base_url, "wrong-key")
        pool = run_check(tmp_path, base_url, "test-key,wrong-key", setting="API_KEYS")
    assert good.returncode == 0, good.stderr
    assert "luma" in good.stdout and "ok" in good.stdout
    assert bad.returncode == 1
    assert "upstream_auth_error" in bad.stdout
    # a key pool: each key is checked on its own, by label
    assert pool.returncode == 1
    rows = {line.split()[1]: line for line in pool.stdout.splitlines() if "luma#" in line}
    assert "ok" in rows["luma#1"] and "upstream_auth_error" in rows["luma#2"]
    assert "wrong-key" not in pool.stdout
    assert fake.submissions() == []
