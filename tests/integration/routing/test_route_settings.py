"""Live route settings through the admin API: the next job follows them, in any process.

The API process and the worker are separate runtimes sharing one database (as
``vidgate serve --no-worker`` and ``vidgate worker`` are): a change made through the
API reaches the worker through the store, never through a shared object.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway, auth
from tests.integration.routing.conftest import live_env, live_gateway
from vidgate.config import Settings
from vidgate.runtime.roles import Role
from vidgate.runtime.services import Runtime, build_runtime
from vidgate.store import audit
from vidgate.testing.fake import FakeUpstream

ADMIN_TOKEN = "routes-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KLING = {"provider": "kling", "model": "kling-v3"}
FAL = {"provider": "fal", "model": "fal-ai/kling-video/v3/pro/text-to-video"}
KLING_3_PRO = {"model": "kling-3-pro", "prompt": "a paper boat on a river", "duration": 5}


@pytest.fixture
def fake_latency_s() -> float:
    return 0.2


@pytest.fixture
async def api_and_worker(
    settings: Settings, fakes: dict[str, FakeUpstream]
) -> AsyncIterator[tuple[Gateway, Runtime]]:
    """An HTTP-only process and a worker-only process on one database."""
    settings.admin_token = ADMIN_TOKEN
    env = live_env(fakes)
    worker = await build_runtime(settings, Role.WORKER, env=env)
    worker.start()
    try:
        async for api in live_gateway(settings, env, role=Role.API, run_worker=False):
            yield api, worker
    finally:
        await worker.close()


def _providers_posted(fake: FakeUpstream) -> int:
    return sum(1 for method, _path, _body in fake.requests if method == "POST")


async def _job(api: Gateway, key: str) -> dict[str, Any]:
    created = await api.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)
    assert created.status_code == 200, created.text
    return await api.wait_terminal(f"/v1/videos/{created.json()['id']}", key)


async def _worker_sees(worker: Runtime, first: str) -> None:
    """Wait (bounded) until the worker's own view of kling-3-pro's routes starts with ``first``."""
    spec = worker.services.catalog.get("kling-3-pro")
    deadline = asyncio.get_running_loop().time() + 10
    while (config := await worker.services.routes.current(spec)).routes[0].provider != first:
        assert asyncio.get_running_loop().time() < deadline, f"the worker never saw the change: {config}"
        await asyncio.sleep(0.05)


async def test_a_route_disabled_through_the_admin_api_is_avoided_by_the_next_job(
    api_and_worker: tuple[Gateway, Runtime], fakes: dict[str, FakeUpstream]
) -> None:
    api, worker = api_and_worker
    key, _ = await api.account("live-co", credit="10", mode="live")
    before = (await api.client.get("/admin/routes/kling-3-pro", headers=ADMIN)).json()
    assert before["policy"] == "ordered" and before["updated_at"] is None and before["updated_by"] is None
    assert [(r["provider"], r["enabled"], r["configured"]) for r in before["routes"]] == [
        ("kling", True, True),
        ("fal", True, True),
    ]
    first = await _job(api, key)
    assert first["vidgate_status"] == "succeeded" and first["upstream"]["provider"] == "kling"
    # the worker has read the settings by now (its snapshot: the catalog's)
    spec = worker.services.catalog.get("kling-3-pro")
    assert (await worker.services.routes.current(spec)).routes[0].enabled

    changed = await api.client.put(
        "/admin/routes/kling-3-pro",
        headers={**ADMIN, "X-Vidgate-Actor": "ops-alice"},
        json={"routes": [{**FAL, "enabled": True, "weight": 1}, {**KLING, "enabled": False, "weight": 1}]},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["updated_by"] == "ops-alice" and body["updated_at"] and body["policy"] == "ordered"
    assert [(r["provider"], r["enabled"]) for r in body["routes"]] == [("fal", True), ("kling", False)]

    # the worker process learns it from the store (no restart, nothing shared but the database)
    await _worker_sees(worker, "fal")
    second = await _job(api, key)
    assert second["vidgate_status"] == "succeeded" and second["upstream"]["provider"] == "fal"
    assert _providers_posted(fakes["kling"]) == 1  # only the first job went there

    async with api.services.db.read() as conn:
        trail = await audit.recent(conn, target="kling-3-pro")
    assert [(e.actor, e.action) for e in trail] == [("ops-alice", "routes.update")]
    assert trail[0].details == {
        "policy": "ordered",
        "routes": [{**FAL, "enabled": True, "weight": 1}, {**KLING, "enabled": False, "weight": 1}],
    }

    # every route disabled: the model is unavailable for live jobs, and says why
    off = await api.client.put(
        "/admin/routes/kling-3-pro",
        headers=ADMIN,
        json={"policy": "ordered", "routes": [{**FAL, "enabled": False}, {**KLING, "enabled": False}]},
    )
    assert off.status_code == 200
    refused = await api.client.post("/v1/videos", headers=auth(key), json=KLING_3_PRO)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "model_unavailable"
    assert "disabled by the operator" in refused.json()["error"]["message"]

    reset = await api.client.delete(
        "/admin/routes/kling-3-pro", headers={**ADMIN, "X-Vidgate-Actor": "ops-bob"}
    )
    assert reset.status_code == 200 and reset.json()["updated_at"] is None
    assert [r["provider"] for r in reset.json()["routes"]] == ["kling", "fal"]
    async with api.services.db.read() as conn:
        latest = (await audit.recent(conn, target="kling-3-pro"))[0]
    assert (latest.actor, latest.action) == ("ops-bob", "routes.reset")
    await _worker_sees(worker, "kling")
    third = await _job(api, key)
    assert third["upstream"]["provider"] == "kling"


@pytest.fixture
async def admin_gateway(settings: Settings, fakes: dict[str, FakeUpstream]) -> AsyncIterator[Gateway]:
    settings.admin_token = ADMIN_TOKEN
    async for gateway in live_gateway(settings, {"VIDGATE_FAL_API_KEY": "fal-key"}, run_worker=False):
        yield gateway


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"routes": [KLING, FAL, {"provider": "acme", "model": "x"}]}, "has no route acme/x"),
        ({"routes": [KLING]}, "missing: fal/"),
        ({"routes": [KLING, FAL, KLING]}, "listed twice"),
        ({"routes": [KLING, {**FAL, "weight": -1}]}, "weight"),
        ({"routes": [KLING, {**FAL, "weight": "heavy"}]}, "weight"),
        ({"policy": "fastest", "routes": [KLING, FAL]}, "policy"),
        ({"routes": [KLING, {**FAL, "enabled": "maybe"}]}, "enabled"),
        ({"routes": [KLING, {**FAL, "colour": "red"}]}, "colour"),
        ({"routes": "kling"}, "routes"),
        ({}, "routes"),
    ],
)
async def test_bad_route_settings_are_refused_with_the_reason_and_change_nothing(
    admin_gateway: Gateway, body: dict[str, Any], needle: str
) -> None:
    answer = await admin_gateway.client.put("/admin/routes/kling-3-pro", headers=ADMIN, json=body)
    assert answer.status_code == 400, answer.text
    assert needle in answer.json()["error"]["message"]
    async with admin_gateway.services.db.read() as conn:
        assert await audit.recent(conn) == []
    now = (await admin_gateway.client.get("/admin/routes/kling-3-pro", headers=ADMIN)).json()
    assert now["updated_at"] is None


async def test_route_listing_and_its_edges(admin_gateway: Gateway) -> None:
    client = admin_gateway.client
    assert (await client.get("/admin/routes")).status_code == 401
    assert (await client.get("/admin/routes", headers=auth("nope"))).status_code == 401
    listed = (await client.get("/admin/routes", headers=ADMIN)).json()
    assert listed["object"] == "list"
    by_model = {item["model"]: item for item in listed["data"]}
    item = by_model["kling-3-pro"]
    assert set(item) == {"model", "policy", "routes", "updated_at", "updated_by"}
    assert set(item["routes"][0]) == {"provider", "model", "enabled", "weight", "configured", "cost"}
    # configured: only fal has a key in this deployment
    assert {r["provider"]: r["configured"] for r in item["routes"]} == {"kling": False, "fal": True}
    assert all(spec.routes for spec in admin_gateway.services.catalog if spec.id in by_model)
    slashed = next(m for m in by_model if "/" in m)
    one = await client.get(f"/admin/routes/{slashed}", headers=ADMIN)
    assert one.status_code == 200 and one.json()["model"] == slashed
    assert (await client.get("/admin/routes/no-such-model", headers=ADMIN)).status_code == 404
    missing = await client.put("/admin/routes/no-such-model", headers=ADMIN, json={"routes": []})
    assert missing.status_code == 404
    garbled = await client.put(
        "/admin/routes/kling-3-pro",
        headers={**ADMIN, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert garbled.status_code == 400


@pytest.fixture
async def cheapest_catalog(
    settings: Settings, fakes: dict[str, FakeUpstream], tmp_path: Path
) -> AsyncIterator[Gateway]:
    """An operator's model with two priced routes, the dearer one first, routed cheapest first."""
    catalog = tmp_path / "ops.toml"
    catalog.write_text(
        """
[[model]]
name = "ops-kling"
label = "Ops Kling"
vendor = "ops"
durations = [5, 10]
default_duration = 5
price = { rule = "per_second", amount = "0.30" }
routing = "cheapest"

[[model.routes]]
provider = "kling"
model = "kling-v3"
params = { mode = "pro" }
durations = [5, 10]
cost = { rule = "per_second", amount = "0.14", source = "published" }

[[model.routes]]
provider = "fal"
model = "fal-ai/kling-video/v3/pro/text-to-video"
cost = { rule = "per_second", amount = "0.07", source = "published" }
"""
    )
    settings.catalog = catalog
    settings.admin_token = ADMIN_TOKEN
    async for gateway in live_gateway(settings, live_env(fakes)):
        yield gateway


async def test_cheapest_first_takes_the_cheaper_route_and_a_policy_change_applies_at_once(
    cheapest_catalog: Gateway, fakes: dict[str, FakeUpstream]
) -> None:
    gateway = cheapest_catalog
    key, _ = await gateway.account("live-co", credit="10", mode="live")
    order = {"model": "ops-kling", "prompt": "a lantern", "duration": 5}

    async def run() -> dict[str, Any]:
        created = await gateway.client.post("/v1/videos", headers=auth(key), json=order)
        assert created.status_code == 200, created.text
        return await gateway.wait_terminal(f"/v1/videos/{created.json()['id']}", key)

    shown = (await gateway.client.get("/admin/routes/ops-kling", headers=ADMIN)).json()
    assert shown["policy"] == "cheapest"
    assert [r["cost"] for r in shown["routes"]] == ["$0.14 per second", "$0.07 per second"]
    assert (await run())["upstream"]["provider"] == "fal"  # $0.35 beats kling's $0.70
    assert _providers_posted(fakes["kling"]) == 0
    ordered = await gateway.client.put(
        "/admin/routes/ops-kling",
        headers=ADMIN,
        json={"policy": "ordered", "routes": [{"provider": "kling", "model": "kling-v3"}, FAL]},
    )
    assert ordered.status_code == 200, ordered.text
    assert (await run())["upstream"]["provider"] == "kling"


async def test_a_process_reads_the_settings_again_once_its_snapshot_is_two_seconds_old(
    settings: Settings,
) -> None:
    """The bound on staleness, on a clock the test moves (no sleeping, no timing)."""
    from vidgate.catalog.loader import load_catalog
    from vidgate.catalog.routing import RouteConfig, RouteSetting
    from vidgate.service.routes import MAX_AGE_S, RouteSettings
    from vidgate.store.engine import open_database
    from vidgate.store.migrate import migrate

    catalog = load_catalog()
    spec = catalog.get("kling-3-pro")
    admin_db, worker_db = open_database(settings, null_pool=True), open_database(settings, null_pool=True)
    await migrate(admin_db)
    now = [1000.0]
    admin, worker = RouteSettings(admin_db, catalog), RouteSettings(worker_db, catalog, clock=lambda: now[0])
    try:
        assert [s.enabled for s in (await worker.current(spec)).routes] == [True, True]
        off = RouteConfig("ordered", (RouteSetting("kling", "kling-v3", False), RouteSetting(**FAL)))
        await admin.update("kling-3-pro", off, actor="ops")
        assert (await admin.current(spec)) == off  # the process that made it sees it at once
        now[0] += MAX_AGE_S - 0.1
        assert (await worker.current(spec)).routes[0].enabled  # within the bound: the snapshot
        assert worker.cached(spec).routes[0].enabled
        now[0] += 0.1
        assert (await worker.current(spec)) == off
        assert worker.cached(spec) == off
    finally:
        await admin.aclose()
        await worker.aclose()
        await admin_db.dispose()
        await worker_db.dispose()
