"""The rest of the admin API behind the console: limits and caps, an account's jobs,
providers, the audit trail, and the token."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway, auth
from vidgate.config import Settings
from vidgate.providers.base import UpstreamAuthError
from vidgate.worker.key_pool import PoolKey

TOKEN = "s3cret-admin"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Vidgate-Actor": "bob"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": TOKEN})


async def test_limits_and_caps_change_with_validation_and_audit(gateway: Gateway) -> None:
    account = (await gateway.client.post("/admin/accounts", headers=ADMIN, json={"name": "initech"})).json()
    url = f"/admin/accounts/{account['id']}"
    changed = await gateway.client.patch(
        url, headers=ADMIN, json={"rate_limit_per_minute": 30, "retention_days": 7}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["rate_limit_per_minute"] == 30 and changed.json()["retention_days"] == 7
    reset = (await gateway.client.patch(url, headers=ADMIN, json={"rate_limit_per_minute": None})).json()
    assert reset["rate_limit_per_minute"] is None and reset["retention_days"] == 7
    for bad in ({}, {"rate_limit_per_minute": -1}, {"retention_days": 0}, {"color": "red"},
                {"rate_limit_per_minute": "lots"}, {"name": None}):  # fmt: skip
        response = await gateway.client.patch(url, headers=ADMIN, json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["message"]
    await gateway.client.post("/admin/accounts", headers=ADMIN, json={"name": "other"})
    assert (await gateway.client.patch(url, headers=ADMIN, json={"name": "other"})).status_code == 409
    assert (
        await gateway.client.patch("/admin/accounts/acct_nope", headers=ADMIN, json={"retention_days": 3})
    ).status_code == 404

    key = (await gateway.client.post(f"{url}/keys", headers=ADMIN, json={"mode": "test"})).json()
    capped = await gateway.client.patch(
        f"/admin/keys/{key['id']}", headers=ADMIN, json={"spend_cap_daily": "2.5", "spend_cap_total": "10"}
    )
    assert capped.status_code == 200, capped.text
    assert capped.json()["spend_cap_daily"] == "2.50" and capped.json()["spend_cap_total"] == "10.00"
    uncapped = (
        await gateway.client.patch(f"/admin/keys/{key['id']}", headers=ADMIN, json={"spend_cap_daily": None})
    ).json()
    assert uncapped["spend_cap_daily"] is None and uncapped["spend_cap_total"] == "10.00"
    for bad in ({}, {"spend_cap_total": "-1"}, {"spend_cap_daily": "abc"}, {"secret": "x"}):
        assert (
            await gateway.client.patch(f"/admin/keys/{key['id']}", headers=ADMIN, json=bad)
        ).status_code == 400
    assert (
        await gateway.client.patch("/admin/keys/key_nope", headers=ADMIN, json={"name": "x"})
    ).status_code == 404

    # The cap holds: a job that would pass the total cap is refused.
    await gateway.client.post(
        f"{url}/topups", headers=ADMIN, json={"amount": "50", "mode": "test", "memo": "trial"}
    )
    await gateway.client.patch(f"/admin/keys/{key['id']}", headers=ADMIN, json={"spend_cap_total": "0.01"})
    refused = await gateway.client.post(
        "/v1/videos", headers=auth(key["secret"]), json={"model": "sora-2", "prompt": "x", "seconds": "4"}
    )
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "spend_cap_exceeded"

    trail = (await gateway.client.get("/admin/audit", headers=ADMIN)).json()["data"]
    mine = [(e["action"], e["target"]) for e in trail if e["actor"] == "bob"]
    assert ("account.update", account["id"]) in mine and ("key.update", key["id"]) in mine
    assert ("account.topup", account["id"]) in mine
    assert all(e["at"] for e in trail)
    page = (await gateway.client.get("/admin/audit", headers=ADMIN, params={"limit": 2})).json()
    older = (
        await gateway.client.get("/admin/audit", headers=ADMIN, params={"before": page["data"][-1]["id"]})
    ).json()
    assert page["has_more"] and older["data"][0]["id"] < page["data"][-1]["id"]


async def test_an_accounts_jobs_are_listed(gateway: Gateway) -> None:
    key, principal = await gateway.account("acme", credit="20")
    ids = []
    for _ in range(3):
        created = await gateway.client.post(
            "/v1/videos", headers=auth(key), json={"model": "sora-2", "prompt": "x", "seconds": "4"}
        )
        ids.append(created.json()["id"])
    url = f"/admin/accounts/{principal.account_id}/jobs"
    listed = (await gateway.client.get(url, headers=ADMIN, params={"limit": 2})).json()
    assert [j["id"] for j in listed["data"]] == ids[::-1][:2] and listed["has_more"]
    rest = (await gateway.client.get(url, headers=ADMIN, params={"before": listed["data"][-1]["id"]})).json()
    assert [j["id"] for j in rest["data"]] == [ids[0]]
    assert (await gateway.client.get(url, headers=ADMIN, params={"before": "video_nope"})).status_code == 404


async def test_providers_and_their_check(gateway: Gateway) -> None:
    listed = await gateway.client.get("/admin/providers", headers=ADMIN)
    assert listed.status_code == 200 and listed.json()["data"] == []  # no upstream configured here
    missing = await gateway.client.post("/admin/providers/fal/test", headers=ADMIN)
    assert missing.status_code == 404 and "fal" in missing.json()["error"]["message"]
    assert (await gateway.client.get("/admin/providers?hours=0", headers=ADMIN)).status_code == 400


async def test_every_new_admin_route_wants_the_token(gateway: Gateway) -> None:
    routes = [("GET", "/admin/jobs"), ("GET", "/admin/jobs/video_x"), ("POST", "/admin/jobs/video_x/cancel"),
              ("POST", "/admin/jobs/video_x/retry"), ("POST", "/admin/jobs/video_x/refund"),
              ("GET", "/admin/providers"), ("POST", "/admin/providers/fal/test"), ("GET", "/admin/audit"),
              ("PATCH", "/admin/accounts/acct_x"), ("PATCH", "/admin/keys/key_x"),
              ("GET", "/admin/accounts/acct_x/jobs")]  # fmt: skip
    for method, path in routes:
        assert (await gateway.client.request(method, path)).status_code == 401, path
        assert (await gateway.client.request(method, path, headers=auth("wrong"))).status_code == 401, path
    gateway.services.settings.admin_token = None
    for method, path in routes:
        assert (await gateway.client.request(method, path, headers=ADMIN)).status_code == 404, path


class _Checked:
    """A stand-in adapter: its check passes or raises as told."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def check(self) -> bool:
        if self.error is not None:
            raise self.error
        return True


async def test_providers_show_each_keys_breaker_and_run_their_check(gateway: Gateway) -> None:
    pool = gateway.services.pool
    pool.install_keys("fal", [PoolKey("fal#1", _Checked()), PoolKey("fal#2", _Checked())])  # type: ignore[arg-type]
    pool.install_keys("kling", [PoolKey("kling", _Checked(UpstreamAuthError("bad key")))])  # type: ignore[arg-type]
    for _ in range(pool.breaker.threshold):
        pool.breaker.failure("fal#1")
    listed = {
        p["name"]: p for p in (await gateway.client.get("/admin/providers", headers=ADMIN)).json()["data"]
    }
    assert listed["fal"]["breaker"] == "degraded"
    assert listed["fal"]["keys"] == [
        {"label": "fal#1", "breaker": "open"},
        {"label": "fal#2", "breaker": "closed"},
    ]
    assert listed["kling"]["breaker"] == "closed" and listed["kling"]["error_rate"] is None

    ok = (await gateway.client.post("/admin/providers/fal/test", headers=ADMIN)).json()
    assert ok["ok"] is True and ok["result"] == "ok"
    refused = (await gateway.client.post("/admin/providers/kling/test", headers=ADMIN)).json()
    assert refused["ok"] is False and "bad key" in refused["result"]
    trail = (await gateway.client.get("/admin/audit", headers=ADMIN, params={"target": "kling"})).json()[
        "data"
    ]
    assert trail[0]["action"] == "provider.test" and trail[0]["actor"] == "bob"
    assert trail[0]["details"]["ok"] is False


async def test_nul_characters_are_refused_before_the_database(gateway: Gateway) -> None:
    account = (await gateway.client.post("/admin/accounts", headers=ADMIN, json={"name": "nul-co"})).json()
    attempts = [
        ("GET", "/admin/accounts/acct%00x", None),
        ("GET", "/admin/jobs?q=video_%00", None),
        ("GET", "/admin/audit?target=%00", None),
        ("POST", "/admin/accounts", {"name": "a\u0000b"}),
        ("PATCH", f"/admin/accounts/{account['id']}", {"name": "x\u0000"}),
        ("POST", f"/admin/accounts/{account['id']}/topups", {"amount": "1", "memo": "\u0000"}),
    ]
    for method, path, body in attempts:
        response = await gateway.client.request(method, path, headers=ADMIN, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_text"
