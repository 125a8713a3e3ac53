"""Dialects at the root of their own port or host name, for clients that drop base paths."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import start_server, stop_server
from tests.conftest import Gateway, auth
from vidgate.api.dialects import root_map
from vidgate.api.dialects.roots import RootConfigError, RootMap, parse_pairs
from vidgate.config import Settings
from vidgate.testing.server import free_port


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "dialect_hosts": "api.example.com=apiframe, tasks.example.com=thalam, mm.example.com=minimax-native"
        }
    )


async def test_a_host_name_serves_its_dialect_at_the_root(gateway: Gateway) -> None:
    key, _ = await gateway.account()
    apiframe = {"Host": "api.example.com", "X-API-Key": f"afk_{key}"}
    models = await gateway.client.get("/v2/models", headers=apiframe)
    assert models.status_code == 200 and models.json()["models"]
    created = await gateway.client.post(
        "/v2/videos/generate",
        headers=apiframe,
        json={"prompt": "p", "model": "kling-3.0", "klingParams": {"duration": 5}},
    )
    assert created.status_code == 202, created.text
    # An unknown path there is Apiframe's 404, not the native one.
    missing = await gateway.client.get("/v1/videos", headers=apiframe)
    assert missing.status_code == 404 and isinstance(missing.json()["error"], str)

    thalam = {"Host": "tasks.example.com:8443", **auth(f"tl-{key}")}
    task = await gateway.client.post(
        "/videos/generations", headers=thalam, json={"model": "alibaba/wan-2.5-t2v-preview", "prompt": "p"}
    )
    assert task.status_code == 200, task.text
    polled = await gateway.client.get(f"/videos/tasks/{task.json()['task_id']}", headers=thalam)
    assert polled.status_code == 200 and polled.json()["task"]["task_id"] == task.json()["task_id"]

    native_mm = await gateway.client.get(
        "/v1/query/video_generation", params={"task_id": "1"}, headers={"Host": "mm.example.com", **auth(key)}
    )
    assert native_mm.status_code == 200 and native_mm.json()["base_resp"]["status_code"] == 2013

    # Any other host is the main API, with Apiframe's /v2 still at its root.
    plain = await gateway.client.get("/v1/models", headers=auth(key))
    assert plain.status_code == 200 and plain.json()["object"] == "list"
    assert (await gateway.client.get("/v2/models")).status_code == 200


def test_configuration_is_checked() -> None:
    assert parse_pairs("apiframe=8003, thalam=8001", "x") == {"apiframe": "8003", "thalam": "8001"}
    assert parse_pairs(["apiframe=8003"], "x") == {"apiframe": "8003"}
    with pytest.raises(RootConfigError):
        parse_pairs("apiframe", "x")
    prefixes = {"apiframe": "/apiframe"}
    with pytest.raises(RootConfigError, match="unknown dialect"):
        RootMap.build(prefixes, ports={"nope": "8003"})
    with pytest.raises(RootConfigError, match="port"):
        RootMap.build(prefixes, ports={"apiframe": "99999"})
    with pytest.raises(RootConfigError, match="unknown dialect"):
        root_map(Settings(dialect_hosts="a.example.com=nope"))
    built = root_map(Settings(dialect_ports="apiframe=8003,thalam=8001"))
    assert built.by_port == {8003: "/apiframe", 8001: "/thalam/v1"}


def test_vidgate_serve_listens_on_each_dialect_port(tmp_path: Path, database_url: str) -> None:
    """The real CLI: ``--dialect-port`` (repeatable) plus ``VIDGATE_DIALECT_PORTS``."""
    apiframe_port, venice_port, kyma_port = free_port(), free_port(), free_port()
    process, served = start_server(
        tmp_path,
        database_url,
        extra_env={"VIDGATE_DIALECT_PORTS": f"kyma={kyma_port}"},
        args=("--dialect-port", f"apiframe={apiframe_port}", "--dialect-port", f"venice={venice_port}"),
    )
    try:
        key = served.demo_key
        with httpx.Client(timeout=10) as http:
            apiframe = http.get(f"http://127.0.0.1:{apiframe_port}/v2/models")
            assert apiframe.status_code == 200 and apiframe.json()["models"]
            venice = http.get(f"http://127.0.0.1:{venice_port}/models", params={"type": "video"})
            assert venice.status_code == 200 and venice.json()["type"] == "video"
            kyma = http.get(f"http://127.0.0.1:{kyma_port}/credits/balance", headers=auth(f"ky-{key}"))
            assert kyma.status_code == 200 and kyma.json()["object"] == "credits.balance"
            # the main port is unchanged
            assert http.get(f"{served.base_url}/v1/models").status_code == 200
            assert (
                http.get(f"{served.base_url}/venice/api/v1/models", params={"type": "video"}).status_code
                == 200
            )
    finally:
        stop_server(process)
