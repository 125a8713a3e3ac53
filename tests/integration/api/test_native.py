"""The native API through the whole app: validation, billing, worker, simulator, media."""

from __future__ import annotations

import io

import av

from tests.conftest import Gateway, auth


async def test_create_runs_to_completion_and_settles(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    created = await gateway.client.post(
        "/v1/videos",
        headers=auth(key),
        json={"model": "sora-2", "prompt": "a lighthouse", "seconds": "4", "size": "1280x720"},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "queued" and body["cost"]["held"] == body["cost"]["estimated"]
    assert "openai-poll-after-ms" in created.headers

    done = await gateway.wait_terminal(f"/v1/videos/{body['id']}", key)
    assert done["vidgate_status"] == "succeeded", done
    assert done["cost"]["charged"] == done["cost"]["estimated"]
    assert done["media"]["width"] == 1280 and done["media"]["height"] == 720

    content = await gateway.client.get(f"/v1/videos/{body['id']}/content", headers=auth(key))
    assert content.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(content.content)) as container:
        assert abs(container.duration / 1e6 - 4) < 0.2

    partial = await gateway.client.get(
        f"/v1/videos/{body['id']}/content", headers={**auth(key), "Range": "bytes=0-99"}
    )
    assert partial.status_code == 206 and len(partial.content) == 100
    assert partial.headers["content-range"].startswith("bytes 0-99/")

    signed = await gateway.client.get(done["video_url"].replace("http://testserver", ""))
    assert signed.status_code == 200 and signed.content == content.content
    tampered = await gateway.client.get(done["video_url"].replace("http://testserver", "")[:-2] + "xx")
    assert tampered.status_code == 404

    account = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    assert account["held"] == "0.00"
    kinds = [
        e["kind"] for e in (await gateway.client.get("/v1/account/ledger", headers=auth(key))).json()["data"]
    ]
    assert kinds == ["capture", "hold", "topup"]


async def test_failure_releases_the_hold(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    before = (await gateway.client.get("/v1/account", headers=auth(key))).json()["balance"]
    created = (
        await gateway.client.post(
            "/v1/videos",
            headers=auth(key),
            json={"model": "sora-2", "prompt": "simulate:fail", "seconds": "4"},
        )
    ).json()
    done = await gateway.wait_terminal(f"/v1/videos/{created['id']}", key)
    assert done["vidgate_status"] == "failed" and "simulate:fail" in done["error"]["message"]
    assert done["cost"]["charged"] is None and done["cost"]["refunded"] == done["cost"]["estimated"]
    after = (await gateway.client.get("/v1/account", headers=auth(key))).json()
    assert after["balance"] == before and after["held"] == "0.00"


async def test_bad_input_is_a_clear_4xx_and_creates_nothing(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="10")
    cases = [
        ({"model": "nope", "prompt": "x"}, 404, "model"),
        ({"model": "sora-2", "prompt": "x", "seconds": "5"}, 400, "duration"),
        ({"model": "sora-2", "prompt": "x", "size": "999x1"}, 400, "size"),
        ({"model": "sora-2", "prompt": "x" * 5000}, 400, "prompt"),
        ({"model": "sora-2", "prompt": "x", "bogus": 1}, 400, "bogus"),
        ({"model": "sora-2", "prompt": "x", "seconds": "four"}, 400, "seconds"),
    ]
    for body, status, needle in cases:
        response = await gateway.client.post("/v1/videos", headers=auth(key), json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert needle in (error["message"] + str(error["param"])), (body, error)
    for raw in (b"{not json", b"", b"[1,2]", b"\xff\xfe"):
        response = await gateway.client.post(
            "/v1/videos", headers={**auth(key), "content-type": "application/json"}, content=raw
        )
        assert response.status_code == 400, (raw, response.text)
    listed = (await gateway.client.get("/v1/videos", headers=auth(key))).json()
    assert listed["data"] == []


async def test_auth_and_isolation(gateway: Gateway) -> None:
    key_a, _ = await gateway.account("a", credit="10")
    key_b, _ = await gateway.account("b", credit="10")
    assert (await gateway.client.get("/v1/videos")).status_code == 401
    assert (await gateway.client.get("/v1/videos", headers=auth("vg_test_nope"))).status_code == 401
    created = (
        await gateway.client.post(
            "/v1/videos",
            headers=auth(key_a),
            json={"model": "sora-2", "prompt": "mine", "seconds": "4"},
        )
    ).json()
    other = await gateway.client.get(f"/v1/videos/{created['id']}", headers=auth(key_b))
    assert other.status_code == 404
    assert (
        await gateway.client.delete(f"/v1/videos/{created['id']}", headers=auth(key_b))
    ).status_code == 404


async def test_insufficient_balance_is_402_and_creates_nothing(gateway: Gateway) -> None:
    key, _ = await gateway.account(credit="0.01")
    response = await gateway.client.post(
        "/v1/videos", headers=auth(key), json={"model": "sora-2", "prompt": "x", "seconds": "4"}
    )
    assert response.status_code == 402, response.text
    assert "balance" in response.json()["error"]["message"]
    assert (await gateway.client.get("/v1/videos", headers=auth(key))).json()["data"] == []


async def test_models_carry_every_constraint_a_form_needs(gateway: Gateway) -> None:
    listed = {m["id"]: m for m in (await gateway.client.get("/v1/models")).json()["data"]}
    i2v = listed["kuaishou/kling-v3.0-pro-i2v"]
    assert i2v["constraints"]["image"] == "required"
    hunyuan = listed["tencent/hunyuan-video-fast"]
    assert hunyuan["constraints"]["duration"] == [5] and hunyuan["defaults"]["duration"] == 5
    assert listed["kling-3-pro"]["constraints"]["prompt_max"] == 4000
    hailuo = next(m for m in listed.values() if m["constraints"]["durations_by_resolution"])
    assert all(isinstance(v, list) for v in hailuo["constraints"]["durations_by_resolution"].values())
    coming_soon = listed["minimax/hailuo-02"]
    assert coming_soon["orderable"] is False and coming_soon["unavailable_reason"]
