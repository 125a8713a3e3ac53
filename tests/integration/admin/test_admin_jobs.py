"""The admin jobs API: find a job by any dialect's id, read its life, cancel, retry, refund."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Gateway, auth
from vidgate.api.dialects import _minimax_ids
from vidgate.config import Settings
from vidgate.ids import job_id_to_number, job_id_to_uuid

TOKEN = "s3cret-admin"
ADMIN = {"Authorization": f"Bearer {TOKEN}", "X-Vidgate-Actor": "alice"}
SORA = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": TOKEN})


async def _video(gateway: Gateway, key: str) -> dict[str, Any]:
    created = await gateway.client.post("/v1/videos", headers=auth(key), json=SORA)
    assert created.status_code == 200, created.text
    body: dict[str, Any] = created.json()
    return body


async def _found(gateway: Gateway, **params: str) -> list[str]:
    response = await gateway.client.get("/admin/jobs", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    return [j["id"] for j in response.json()["data"]]


async def _audit(gateway: Gateway, target: str) -> list[dict[str, Any]]:
    response = await gateway.client.get("/admin/audit", headers=ADMIN, params={"target": target})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_a_job_is_found_by_each_dialect_id_form(gateway: Gateway) -> None:
    key, principal = await gateway.account("acme", credit="50")
    native = (await _video(gateway, key))["id"]
    thalam = await gateway.client.post(
        "/thalam/v1/videos/generations",
        headers=auth(f"tl-{key}"),
        json={"model": "alibaba/wan-2.5-t2v-preview", "prompt": "a quiet harbour", "duration": 5},
    )
    assert thalam.status_code == 200, thalam.text
    task_id = thalam.json()["task_id"]
    minimax = await gateway.client.post(
        "/minimax/v1/video_generation", headers=auth(key), json={"model": "T2V-01", "prompt": "a harbour"}
    )
    assert minimax.status_code == 200, minimax.text
    minimax_task = minimax.json()["task_id"]

    assert await _found(gateway, q=native) == [native]
    assert await _found(gateway, q=task_id) == [task_id]  # Thalam's task id (and Kyma's job id)
    assert await _found(gateway, q=job_id_to_uuid(native)) == [native]  # Venice queue_id, Apiframe jobId
    assert await _found(gateway, q=job_id_to_number(native)) == [native]  # MiniMax's reading of it
    minimax_job = await _found(gateway, q=minimax_task)
    assert len(minimax_job) == 1
    life = (await gateway.client.get(f"/admin/jobs/{minimax_job[0]}", headers=ADMIN)).json()
    assert life["job"]["public_ids"]["minimax_task_id"] == minimax_task
    assert life["job"]["dialect"] == "minimax"
    assert await _found(gateway, q=_minimax_ids.file_id(minimax_job[0])) == minimax_job  # its file_id too
    assert await _found(gateway, q="no-such-id") == []

    # The other filters, alone and together.
    assert set(await _found(gateway, account=principal.account_id)) == {native, task_id, minimax_job[0]}
    assert set(await _found(gateway, account="acme", model="sora-2")) == {native}
    assert await _found(gateway, account="acme", since="2100-01-01T00:00:00") == []
    assert len(await _found(gateway, until="2100-01-01")) == 3
    assert await _found(gateway, provider="nobody") == []
    page = (await gateway.client.get("/admin/jobs", headers=ADMIN, params={"limit": 2})).json()
    assert len(page["data"]) == 2 and page["has_more"]
    rest = await _found(gateway, limit="2", before=page["data"][-1]["id"])
    assert len(rest) == 1 and rest[0] not in {j["id"] for j in page["data"]}

    odd = ({"status": "flying"}, {"since": "yesterday"}, {"limit": "0"}, {"mode": "both"},
           {"since": "0001-01-01T00:00:00+14:00"}, {"until": "9999-12-31T23:59:59-14:00"})  # fmt: skip
    for bad in odd:
        response = await gateway.client.get("/admin/jobs", headers=ADMIN, params=bad)
        assert response.status_code == 400, (bad, response.text)
    assert (
        await gateway.client.get("/admin/jobs", headers=ADMIN, params={"account": "nope"})
    ).status_code == 404


async def test_a_jobs_life_shows_events_attempts_ledger_and_money(gateway: Gateway) -> None:
    key, _ = await gateway.account("acme", credit="50")
    video = await _video(gateway, key)
    done = await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    assert done["vidgate_status"] == "succeeded"
    life = (await gateway.client.get(f"/admin/jobs/{video['id']}", headers=ADMIN)).json()
    assert life["job"]["status"] == "succeeded" and life["account"]["name"] == "acme"
    types = [e["type"] for e in life["events"]]
    assert types[0] == "video.queued" and types[-1] == "video.completed"
    assert life["upstream_attempts"][0]["provider"] == "simulator"
    assert life["upstream_attempts"][0]["outcome"] == "accepted"
    assert [e["kind"] for e in life["ledger"]] == ["hold", "capture"]
    money = life["money"]
    assert money["charged_micros"] > 0 and money["refunded"] == "0.00"
    assert money["refundable_micros"] == money["charged_micros"]
    assert (await gateway.client.get("/admin/jobs/video_nope", headers=ADMIN)).status_code == 404


async def test_refunds_never_pass_what_was_captured(gateway: Gateway) -> None:
    key, principal = await gateway.account("acme", credit="50")
    video = await _video(gateway, key)
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    charged = (await gateway.client.get(f"/admin/jobs/{video['id']}", headers=ADMIN)).json()["money"]
    charged_micros = charged["charged_micros"]
    before = (await gateway.client.get("/v1/account", headers=auth(key))).json()["balance_micros"]
    url = f"/admin/jobs/{video['id']}/refund"

    too_much = await gateway.client.post(
        url, headers=ADMIN, json={"amount": str((charged_micros + 1) / 1e6), "reason": "x"}
    )
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "refund_too_large"
    half = charged_micros // 2
    first = await gateway.client.post(
        url, headers=ADMIN, json={"amount": f"{half / 1e6:.6f}", "reason": "blurry output"}
    )
    assert first.status_code == 201, first.text
    rest = charged_micros - half
    over = await gateway.client.post(
        url, headers=ADMIN, json={"amount": f"{(rest + 1) / 1e6:.6f}", "reason": "again"}
    )
    assert over.status_code == 400
    last = await gateway.client.post(
        url, headers=ADMIN, json={"amount": f"{rest / 1e6:.6f}", "reason": "all"}
    )
    assert last.status_code == 201 and last.json()["refundable"] == "0.00"
    nothing = await gateway.client.post(url, headers=ADMIN, json={"amount": "0.000001", "reason": "more"})
    assert nothing.status_code == 400
    for bad in ({"amount": "-1", "reason": "x"}, {"amount": "1"}, {"amount": "1", "reason": ""}, {"x": 1}):
        assert (await gateway.client.post(url, headers=ADMIN, json=bad)).status_code == 400, bad

    after = (await gateway.client.get("/v1/account", headers=auth(key))).json()["balance_micros"]
    assert after - before == charged_micros
    life = (await gateway.client.get(f"/admin/jobs/{video['id']}", headers=ADMIN)).json()
    adjustments = [e for e in life["ledger"] if e["kind"] == "adjustment"]
    assert [e["memo"] for e in adjustments] == ["blurry output", "all"]
    assert all(e["job_id"] == video["id"] for e in adjustments)
    assert life["money"]["refunded_micros"] == charged_micros
    trail = await _audit(gateway, video["id"])
    assert [(e["action"], e["actor"]) for e in trail] == [("job.refund", "alice"), ("job.refund", "alice")]
    assert principal.account_id


async def test_cancel_releases_the_hold_and_retry_makes_one_new_job(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    key, _ = await gateway.account("acme", credit="50")
    video = await _video(gateway, key)
    url = f"/admin/jobs/{video['id']}"
    early_retry = await gateway.client.post(f"{url}/retry", headers=ADMIN)
    assert early_retry.status_code == 409

    canceled = await gateway.client.post(f"{url}/cancel", headers=ADMIN, json={"reason": "stuck"})
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    assert account["held_micros"] == 0 and account["balance"] == "50.00"
    assert (await gateway.client.post(f"{url}/cancel", headers=ADMIN)).status_code == 409

    retried = await gateway.client.post(f"{url}/retry", headers=ADMIN)
    assert retried.status_code == 201, retried.text
    new = retried.json()
    assert new["id"] != video["id"] and new["status"] == "queued" and new["retry_of"] == video["id"]
    assert new["created"] is True
    again = (await gateway.client.post(f"{url}/retry", headers=ADMIN)).json()
    assert again["id"] == new["id"] and again["created"] is False
    held = (await gateway.client.get("/v1/account", headers=auth(key))).json()["held_micros"]
    assert held == video["cost"]["estimated_micros"] if "estimated_micros" in video["cost"] else held > 0

    actions = [(e["action"], e["actor"]) for e in await _audit(gateway, video["id"])]
    assert actions == [("job.retry", "alice"), ("job.cancel", "alice")]
    assert (await gateway.client.post("/admin/jobs/video_nope/cancel", headers=ADMIN)).status_code == 404


async def test_concurrent_refunds_together_never_pass_the_charge(gateway: Gateway) -> None:
    key, _ = await gateway.account("acme", credit="50")
    video = await _video(gateway, key)
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    charged = (await gateway.client.get(f"/admin/jobs/{video['id']}", headers=ADMIN)).json()["money"]
    share = f"{(charged['charged_micros'] * 2 // 3) / 1e6:.6f}"  # two of these pass the charge
    url = f"/admin/jobs/{video['id']}/refund"
    answers = await asyncio.gather(
        *(
            gateway.client.post(url, headers=ADMIN, json={"amount": share, "reason": f"r{i}"})
            for i in range(2)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 400], [a.text for a in answers]
    life = (await gateway.client.get(f"/admin/jobs/{video['id']}", headers=ADMIN)).json()
    assert len([e for e in life["ledger"] if e["kind"] == "adjustment"]) == 1
    assert life["money"]["refunded_micros"] <= charged["charged_micros"]
