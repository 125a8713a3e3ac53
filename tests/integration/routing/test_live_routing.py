"""Live-mode keys through real adapters and fake upstreams on real ports.

The gateway is configured only through VIDGATE_<NAME>_API_KEY / _BASE_URL, as an
operator would; the fakes follow the providers' documented wire formats.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import av
import pytest

from tests.conftest import Gateway, auth
from tests.integration.routing.conftest import live_env, live_gateway
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.runtime.app import create_app
from vidgate.store import jobs as job_store
from vidgate.testing.fake import FakeUpstream
from vidgate.testing.server import serve_in_thread

KLING_3_PRO = {"model": "kling-3-pro", "prompt": "a paper boat on a river", "duration": 5}


@pytest.fixture
async def fal_only(settings: Settings, fakes: dict[str, FakeUpstream]) -> AsyncIterator[Gateway]:
    env = {"VIDGATE_FAL_API_KEY": "fal-key", "VIDGATE_FAL_BASE_URL": fakes["fal"].base_url}
    async for gateway in live_gateway(settings, env):
        yield gateway


@pytest.fixture
async def kling_then_fal(settings: Settings, fakes: dict[str, FakeUpstream]) -> AsyncIterator[Gateway]:
    settings.upstream_timeout_s = 2
    settings.upstream_submit_timeout_s = 2
    async for gateway in live_gateway(settings, live_env(fakes)):
        yield gateway


async def test_live_job_through_fal_completes_and_captures(
    fal_only: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    key, _principal = await fal_only.account("live-co", credit="5", mode="live")
    created = await fal_only.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)
    assert created.status_code == 200, created.text
    done = await fal_only.wait_terminal(f"/v1/videos/{created.json()['id']}", key)
    assert done["vidgate_status"] == "succeeded", done
    assert done["upstream"]["provider"] == "fal"
    assert done["cost"]["charged"] == "0.756" and done["cost"]["refunded"] == "0.00"
    # the upstream saw the route's fal endpoint and fal's own auth scheme
    _method, path, body = next(r for r in fakes["fal"].requests if r[0] == "POST")
    assert path.endswith("fal-ai/kling-video/v3/pro/text-to-video")
    assert body["prompt"] == KLING_3_PRO["prompt"]
    # the media is ours now: re-hosted, probed, and served from vidgate
    content = await fal_only.client.get(f"/v1/videos/{done['id']}/content", headers=auth(key))
    with av.open(io.BytesIO(content.content)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert fakes["fal"].base_url not in str(content.headers)
    account = (await fal_only.client.get("/v1/account", headers=auth(key))).json()
    assert account["balance"] == "4.244" and account["held"] == "0.00"


async def test_model_without_a_configured_upstream_is_unavailable(fal_only: Gateway) -> None:
    key, _ = await fal_only.account("live-co", credit="5", mode="live")
    response = await fal_only.client.post(
        "/v1/videos",
        headers=auth(key),
        json={"model": "shengshu/vidu-q3-pro-t2v", "prompt": "x", "duration": 5},
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "model_unavailable"
    model = (await fal_only.client.get("/v1/models/shengshu/vidu-q3-pro-t2v")).json()
    assert model["available_live"] is False and model["unavailable_reason"]
    listed = {m["id"]: m for m in (await fal_only.client.get("/v1/models")).json()["data"]}
    assert listed["kling-3-pro"]["available_live"] is True


async def test_5xx_at_submit_fails_over_to_the_next_route(
    kling_then_fal: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["kling"].script.submit_statuses = [503]
    key, _ = await kling_then_fal.account("live-co", credit="5", mode="live")
    created = (await kling_then_fal.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    done = await kling_then_fal.wait_terminal(f"/v1/videos/{created['id']}", key)
    assert done["vidgate_status"] == "succeeded" and done["upstream"]["provider"] == "fal"
    # with the 503 gone, the same gateway goes back to the first route
    again = (await kling_then_fal.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    done = await kling_then_fal.wait_terminal(f"/v1/videos/{again['id']}", key)
    assert done["vidgate_status"] == "succeeded" and done["upstream"]["provider"] == "kling"


async def test_rejection_at_submit_does_not_fail_over_and_costs_nothing(
    kling_then_fal: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["kling"].script.content_policy = True
    key, _ = await kling_then_fal.account("live-co", credit="5", mode="live")
    created = (await kling_then_fal.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    done = await kling_then_fal.wait_terminal(f"/v1/videos/{created['id']}", key)
    assert done["vidgate_status"] == "failed" and done["error"]["code"] == "content_policy_violation"
    assert done["cost"]["charged"] is None and done["cost"]["refunded"] == done["cost"]["estimated"]
    assert not [r for r in fakes["fal"].requests if r[0] == "POST"]


async def test_every_route_timing_out_rides_to_the_deadline_and_says_why(
    kling_then_fal: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["kling"].script.delay_s = 4
    fakes["fal"].script.delay_s = 4
    key, _ = await kling_then_fal.account("live-co", credit="5", mode="live")
    created = (await kling_then_fal.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    async with kling_then_fal.services.db.transaction() as conn:  # a short deadline for the test
        await job_store.update_job(
            conn, created["id"], now=utcnow(), deadline_at=utcnow() + timedelta(seconds=8)
        )
    done = await kling_then_fal.wait_terminal(f"/v1/videos/{created['id']}", key, timeout_s=40)
    # A timeout after sending is an unknown outcome, never a failure: the job is retried and
    # reconciled until its deadline, and then it says what the upstream last did.
    assert done["vidgate_status"] == "expired" and done["error"]["code"] == "timeout"
    assert "the last upstream answer was" in done["error"]["message"]
    assert "timed out" in done["error"]["message"]
    account = (await kling_then_fal.client.get("/v1/account", headers=auth(key))).json()
    assert account["balance"] == "5.00"


async def test_output_that_is_not_a_video_is_refused_and_refunded(
    fal_only: Gateway, fakes: dict[str, FakeUpstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vidgate.testing.fake as fake_module

    monkeypatch.setattr(fake_module, "sample_mp4", lambda *a, **k: b"<html>not a video</html>")
    key, _ = await fal_only.account("live-co", credit="5", mode="live")
    created = (await fal_only.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    done = await fal_only.wait_terminal(f"/v1/videos/{created['id']}", key)
    assert done["vidgate_status"] == "failed" and done["error"]["code"] == "invalid_output"
    assert done["cost"]["charged"] is None


async def test_expired_output_url_fails_the_job_with_the_reason(
    fal_only: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    fakes["fal"].script.output_ttl_s = 0
    key, _ = await fal_only.account("live-co", credit="5", mode="live")
    created = (await fal_only.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    done = await fal_only.wait_terminal(f"/v1/videos/{created['id']}", key)
    assert done["vidgate_status"] == "failed" and done["error"]["code"] == "upstream_output_expired"


async def _live_key(settings: Settings) -> str:
    from vidgate.billing.accounts import ensure_account, issue_key, top_up
    from vidgate.store.engine import open_database

    db = open_database(settings, null_pool=True)
    try:
        async with db.transaction() as conn:
            account = await ensure_account(conn, "live-co")
            issued = await issue_key(conn, account, mode="live")
            await top_up(conn, account, micros=5_000_000, mode="live")
    finally:
        await db.dispose()
    return issued.secret


async def test_signed_fal_callback_is_verified_and_wakes_the_job(
    settings: Settings, fakes: dict[str, FakeUpstream]
) -> None:
    """fal calls vidgate back on a real port; the Ed25519 signature is checked."""
    import httpx

    from vidgate.testing.server import free_port

    port = free_port()
    settings.public_url = f"http://127.0.0.1:{port}"
    env = {"VIDGATE_FAL_API_KEY": "fal-key", "VIDGATE_FAL_BASE_URL": fakes["fal"].base_url}
    app = create_app(settings, run_worker=True, env=env)
    with serve_in_thread(app, port=port) as base:
        # the app's engine lives on the server thread's loop: make the key with our own
        key = await _live_key(settings)
        async with httpx.AsyncClient(base_url=base) as client:
            gateway = Gateway(app.state.services, client, app.state.runtime)
            created = (await client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
            done = await gateway.wait_terminal(f"/v1/videos/{created['id']}", key)
    assert done["vidgate_status"] == "succeeded"
    submitted = next(r for r in fakes["fal"].requests if r[0] == "POST")
    assert submitted[1].endswith("text-to-video")
    delivered = [payload for url, payload in fakes["fal"].callbacks_sent if "/callbacks/fal" in url]
    assert delivered and all("error" not in p or p.get("status") for p in delivered)


async def test_cancel_releases_at_once_and_cancels_upstream(
    fal_only: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    import asyncio

    fakes["fal"].script.latency_s = 30
    key, _ = await fal_only.account("live-co", credit="5", mode="live")
    created = (await fal_only.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)).json()
    for _ in range(200):
        current = (await fal_only.client.get(f"/v1/videos/{created['id']}", headers=auth(key))).json()
        if current["upstream"]:
            break
        await asyncio.sleep(0.05)
    canceled = await fal_only.client.post(f"/v1/videos/{created['id']}/cancel", headers=auth(key))
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["vidgate_status"] == "canceled" and body["cost"]["refunded"] == body["cost"]["estimated"]
    account = (await fal_only.client.get("/v1/account", headers=auth(key))).json()
    assert account["balance"] == "5.00" and account["held"] == "0.00"
    for _ in range(200):
        if any(method == "PUT" and path.endswith("/cancel") for method, path, _ in fakes["fal"].requests):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"fal never saw the cancel: {fakes['fal'].requests}")
    again = await fal_only.client.post(f"/v1/videos/{created['id']}/cancel", headers=auth(key))
    assert again.status_code == 409


def test_provider_settings_come_from_the_config_file_and_env_overrides(tmp_path: Path) -> None:
    import httpx

    from vidgate.worker.providers import ProviderPool

    config = tmp_path / "vidgate.toml"
    config.write_text(
        '[providers.fal]\napi_key = "from-file"\nbase_url = "http://fal.internal"\n'
        '[providers.runway]\napi_key = "runway-from-file"\n'
    )
    settings = Settings(data_dir=tmp_path, config=config)
    client = httpx.AsyncClient()
    pool = ProviderPool(settings, client, env={"VIDGATE_RUNWAY_API_KEY": "runway-from-env"})
    assert pool.enabled == ["fal", "runway"]
    fal, runway = pool.context("fal"), pool.context("runway")
    assert fal is not None and fal.api_key == "from-file" and fal.base_url == "http://fal.internal"
    assert runway is not None and runway.api_key == "runway-from-env"
    assert pool.call_timeout("fal") == settings.upstream_timeout_s + 5


def test_fake_upstream_cli_serves_a_real_protocol(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    import httpx

    from vidgate.testing.server import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vidgate", "fake-upstream", "fal", "--port", str(port), "--latency", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/__fake__/jobs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        refused = httpx.post(f"{base}/fal-ai/x/text-to-video", json={"prompt": "p"})
        assert refused.status_code == 401
        accepted = httpx.post(
            f"{base}/fal-ai/x/text-to-video", json={"prompt": "p"}, headers={"Authorization": "Key test-key"}
        )
        assert accepted.status_code == 200 and accepted.json()["request_id"]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def fal_with_durations(
    settings: Settings, fakes: dict[str, FakeUpstream], tmp_path: Path
) -> AsyncIterator[Gateway]:
    """An operator's model sold in whole seconds 1-30, whose fal route makes 5 or 10 s."""
    catalog = tmp_path / "ops.toml"
    catalog.write_text(
        """
[[model]]
name = "ops-clip"
label = "Ops clip"
vendor = "ops"
durations = { min = 1, max = 30 }
default_duration = 5
price = { rule = "per_second", amount = "0.10" }

[[model.routes]]
provider = "fal"
model = "fal-ai/ops/text-to-video"
durations = [5, 10]
"""
    )
    settings.catalog = catalog
    env = {"VIDGATE_FAL_API_KEY": "fal-key", "VIDGATE_FAL_BASE_URL": fakes["fal"].base_url}
    async for gateway in live_gateway(settings, env):
        yield gateway


async def test_sold_durations_map_to_what_the_upstream_makes(
    fal_with_durations: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    gateway = fal_with_durations
    fakes["fal"].script.video_seconds = 10
    key, _ = await gateway.account("ops", credit="10", mode="live")
    seven = (
        await gateway.client.post(
            "/v1/videos", headers=auth(key), json={"model": "ops-clip", "prompt": "p", "duration": 7}
        )
    ).json()
    done = await gateway.wait_terminal(f"/v1/videos/{seven['id']}", key)
    assert done["vidgate_status"] == "succeeded"
    _, _, body = next(r for r in fakes["fal"].requests if r[0] == "POST")
    assert str(body.get("duration")).removesuffix("s") == "10", body  # asked upstream for 10 s
    assert done["cost"]["charged"] == "0.70"  # billed what was sold: 7 s, never more than the hold

    thirty = (
        await gateway.client.post(
            "/v1/videos", headers=auth(key), json={"model": "ops-clip", "prompt": "p", "duration": 30}
        )
    ).json()
    failed = await gateway.wait_terminal(f"/v1/videos/{thirty['id']}", key)
    assert failed["vidgate_status"] == "failed" and "30 s" in failed["error"]["message"]
    assert failed["cost"]["refunded"] == failed["cost"]["estimated"]
