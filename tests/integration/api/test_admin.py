"""The admin API: off without a token, and with one it manages accounts, keys and money."""

from __future__ import annotations

from tests.conftest import Gateway, auth


async def test_admin_api_is_invisible_without_a_token(gateway: Gateway) -> None:
    assert (await gateway.client.get("/admin/accounts")).status_code == 404


async def test_admin_manages_accounts_keys_topups_and_ledgers(gateway: Gateway) -> None:
    gateway.services.settings.admin_token = "s3cret-admin"
    admin = {"Authorization": "Bearer s3cret-admin"}
    assert (await gateway.client.get("/admin/accounts", headers=auth("wrong"))).status_code == 401

    created = await gateway.client.post("/admin/accounts", headers=admin, json={"name": "globex"})
    assert created.status_code == 201
    account_id = created.json()["id"]
    duplicate = await gateway.client.post("/admin/accounts", headers=admin, json={"name": "globex"})
    assert duplicate.status_code == 409

    key = await gateway.client.post(
        f"/admin/accounts/{account_id}/keys", headers=admin, json={"mode": "test", "spend_cap_total": "1"}
    )
    assert key.status_code == 201 and key.json()["secret"].startswith("vg_test_")
    secret, key_id = key.json()["secret"], key.json()["id"]

    topup = await gateway.client.post(
        f"/admin/accounts/{account_id}/topups", headers=admin, json={"amount": "12.5", "mode": "test"}
    )
    assert topup.json()["balance"] == "12.50"
    assert (await gateway.client.get("/v1/account", headers=auth(secret))).json()["balance"] == "12.50"
    bad = await gateway.client.post(
        f"/admin/accounts/{account_id}/topups", headers=admin, json={"amount": "-5", "mode": "test"}
    )
    assert bad.status_code == 400

    ledger = (
        await gateway.client.get(f"/admin/accounts/{account_id}/ledger?mode=test", headers=admin)
    ).json()
    assert [e["kind"] for e in ledger["data"]] == ["topup"]
    detail = (await gateway.client.get(f"/admin/accounts/{account_id}", headers=admin)).json()
    assert detail["balances"]["test"]["balance"] == "12.50" and detail["keys"][0]["spend_cap_total"] == "1.00"

    assert (await gateway.client.delete(f"/admin/keys/{key_id}", headers=admin)).status_code == 200
    assert (await gateway.client.get("/v1/account", headers=auth(secret))).status_code == 401
    assert (await gateway.client.delete("/admin/keys/key_nope", headers=admin)).status_code == 404
