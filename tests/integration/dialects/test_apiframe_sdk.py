"""Apiframe as its official Node SDK sees it, over real ports.

The SDK (``apiframe-ai/apiframe-nodejs-sdk``) builds every URL as
``new URL('/v2/...', base + '/')``: an absolute path resolved against the base,
which keeps only the base's origin. ``urljoin`` has the same semantics, so the
client below reproduces its URL building, headers and ``waitFor`` loop. It runs
the SDK's flow (submit, get, wait, list, idempotent replay, errors) against

* a dialect port (``VIDGATE_DIALECT_PORTS=apiframe=<port>``), and
* the main port with base ``http://HOST/apiframe`` (its path is dropped, so the
  calls land on ``/v2/...`` at the root, which the main port also serves),

and holds every response to the facts of Apiframe's published OpenAPI
(``JobAccepted``, ``Job``, ``JobList``, ``ModelCatalog``, ``ValidationError``,
``ErrorResponse``, ``InsufficientCredits``), written below as our own schemas.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
import pytest

from tests.integration.dialects._schema import Schema, conforms
from vidgate.billing.accounts import ensure_account, issue_key, top_up
from vidgate.config import Settings
from vidgate.money import micros_from_usd
from vidgate.runtime.app import create_app
from vidgate.store.engine import Database, open_database
from vidgate.testing.server import free_port, serve_in_thread

STATUSES = ["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]
NULLABLE_DATE = {"type": ["string", "null"], "format": "date-time"}
_JOB_FIELDS: dict[str, Schema] = {
    "id": {"type": "string", "format": "uuid"},
    "status": {"type": "string", "enum": STATUSES},
    "model": {"type": "string"},
    "progress": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
    "error": {"type": ["string", "null"]},
    "creditCost": {"type": ["integer", "null"]},
    "webhookStatus": {"type": ["string", "null"], "enum": ["pending", "delivered", "failed", None]},
    "createdAt": {"type": "string", "format": "date-time"},
    "completedAt": NULLABLE_DATE,
    "expired": {"type": "boolean"},
    "input": {"type": ["object", "null"]},
}
_JOB_REQUIRED = [
    "id",
    "status",
    "model",
    "progress",
    "error",
    "creditCost",
    "webhookStatus",
    "createdAt",
    "completedAt",
]
JOB: Schema = {"type": "object", "required": _JOB_REQUIRED, "properties": _JOB_FIELDS}
# A list item also requires ``expired``, whatever the job's status.
JOB_LIST: Schema = {
    "type": "object",
    "required": ["jobs", "nextCursor", "hasMore"],
    "properties": {
        "jobs": {
            "type": "array",
            "items": {"type": "object", "required": [*_JOB_REQUIRED, "expired"], "properties": _JOB_FIELDS},
        },
        "nextCursor": {"type": ["string", "null"]},
        "hasMore": {"type": "boolean"},
        "models": {"type": "array", "items": {"type": "string"}},
    },
}
JOB_ACCEPTED: Schema = {
    "type": "object",
    "required": ["jobId", "status"],
    "properties": {
        "jobId": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]},
    },
}
ERROR: Schema = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
VALIDATION: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "details": {"type": "object", "additional": {"type": "array", "items": {"type": "string"}}},
    },
}
INSUFFICIENT: Schema = {
    "type": "object",
    "required": ["error", "creditsRequired", "creditsAvailable"],
    "properties": {
        "error": {"type": "string", "enum": ["Insufficient credits"]},
        "creditsRequired": {"type": "integer", "minimum": 0},
        "creditsAvailable": {"type": "integer", "minimum": 0},
    },
}
CATALOG: Schema = {
    "type": "object",
    "required": ["models"],
    "properties": {
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "label", "modality"],
                "properties": {
                    "id": {"type": "string"},
                    "label": {"type": "string"},
                    "modality": {"type": "string", "enum": ["image", "video", "music"]},
                    "description": {"type": "string"},
                    "costMin": {"type": ["number", "null"]},
                    "costMax": {"type": ["number", "null"]},
                    "pricingMode": {"type": "string", "enum": ["flat", "per-second", "per-output"]},
                },
            },
        }
    },
}
KLING = {"prompt": "a paper boat", "model": "kling-3.0", "klingParams": {"duration": 5, "mode": "standard"}}


class SdkError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.text}")
        self.status = response.status_code
        self.body: dict[str, Any] = response.json()


@dataclass
class ApiframeClient:
    """The official Node SDK's request rules: URL building, headers, ``waitFor``."""

    http: httpx.AsyncClient
    base_url: str
    api_key: str

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        # new URL(path, `${baseUrl.replace(/\/+$/, '')}/`): an absolute path keeps only the origin.
        url = urljoin(self.base_url.rstrip("/") + "/", path if path.startswith("/") else f"/{path}")
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        return f"{url}?{urlencode(params)}" if params else url

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"x-api-key": self.api_key, "accept": "application/json"}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        response = await self.http.request(method, self.url(path, query), json=body, headers=headers)
        if response.status_code >= 400:
            raise SdkError(response)
        result: dict[str, Any] = response.json()
        return result

    async def generate(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        return await self.request("POST", "/v2/videos/generate", body=body, idempotency_key=idempotency_key)

    async def get(self, job_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/v2/jobs/{job_id}")

    async def list(self, **query: Any) -> dict[str, Any]:
        return await self.request("GET", "/v2/jobs", query=query)

    async def models(self) -> dict[str, Any]:
        return await self.request("GET", "/v2/models", query={"modality": "video"})

    async def wait_for(self, job_id: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """Poll until COMPLETED (returned) or FAILED/CANCELLED (raised), as ``jobs.waitFor``."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        interval = 0.05
        while True:
            job = await self.get(job_id)
            conforms(job, JOB)
            if job["status"] == "COMPLETED":
                return job
            if job["status"] in ("FAILED", "CANCELLED"):
                raise AssertionError(f"job ended {job['status']}: {job.get('error')}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s")
            await asyncio.sleep(interval)
            interval = min(0.5, interval * 1.5)


@dataclass
class Served:
    main: str  # http://127.0.0.1:<main port>
    dialect: str  # http://127.0.0.1:<apiframe port>
    db: Database


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Settings, str, str]]:
    port = free_port()
    configured = settings.model_copy(update={"simulator_latency_s": 1.0, "dialect_ports": f"apiframe={port}"})
    with serve_in_thread(create_app(configured, env={}), also_ports=(port,)) as main:
        yield configured, main, f"http://127.0.0.1:{port}"


@pytest.fixture
async def gateway_ports(served: tuple[Settings, str, str]) -> AsyncIterator[Served]:
    settings, main, dialect = served
    db = open_database(settings)
    try:
        yield Served(main, dialect, db)
    finally:
        await db.dispose()


async def make_key(db: Database, name: str, credit: str) -> str:
    async with db.transaction() as conn:
        account = await ensure_account(conn, name)
        issued = await issue_key(conn, account, mode="test")
        if Decimal(credit) > 0:
            await top_up(conn, account, micros=micros_from_usd(credit), mode=issued.mode)
    return "afk_" + issued.secret


def bases(served: Served) -> dict[str, str]:
    return {
        # The dialect's own port; a base path, if any, is dropped by the SDK anyway.
        "dialect port": f"{served.dialect}/apiframe",
        # The main port with the documented base: the SDK drops /apiframe and calls /v2/... at the root.
        "main port root": f"{served.main}/apiframe",
    }


@pytest.mark.parametrize("where", ["dialect port", "main port root"])
async def test_the_sdk_flow(gateway_ports: Served, where: str) -> None:
    key = await make_key(gateway_ports.db, f"sdk-{where}", "100")
    async with httpx.AsyncClient(timeout=30) as http:
        sdk = ApiframeClient(http, bases(gateway_ports)[where], key)
        origin = sdk.base_url.removesuffix("/apiframe")
        assert sdk.url("/v2/jobs", {"limit": 5}) == f"{origin}/v2/jobs?limit=5"  # the base path is gone

        conforms(await sdk.models(), CATALOG)

        # submit, then replay the same Idempotency-Key: one job
        accepted = await sdk.generate(KLING, idempotency_key=f"idem-{where}")
        conforms(accepted, JOB_ACCEPTED)
        replay = await sdk.generate(KLING, idempotency_key=f"idem-{where}")
        conforms(replay, JOB_ACCEPTED)
        assert replay["jobId"] == accepted["jobId"]
        with pytest.raises(SdkError) as conflict:
            await sdk.generate({**KLING, "prompt": "another"}, idempotency_key=f"idem-{where}")
        assert conflict.value.status == 409
        conforms(conflict.value.body, ERROR)

        # get (still running: the simulator takes a second), and list while it runs
        conforms(await sdk.get(accepted["jobId"]), JOB)
        running_list = await sdk.list(limit=10)
        conforms(running_list, JOB_LIST)
        items = {item["id"]: item for item in running_list["jobs"]}
        assert items[accepted["jobId"]]["expired"] is False

        # a failed job
        failing = await sdk.generate({**KLING, "prompt": "simulate:fail"})
        with pytest.raises(AssertionError, match="FAILED"):
            await sdk.wait_for(failing["jobId"])
        failed = await sdk.get(failing["jobId"])
        conforms(failed, JOB)
        assert failed["creditCost"] == 0 and isinstance(failed["error"], str) and failed["error"]

        # wait, then the result: the video URL works from where the client stands
        done = await sdk.wait_for(accepted["jobId"])
        assert done["result"]["videoUrl"].startswith("http")
        video = await http.get(done["result"]["videoUrl"])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"

        # list every status, and page through with the cursor
        everything = await sdk.list(limit=1)
        conforms(everything, JOB_LIST)
        assert everything["hasMore"] is True and everything["nextCursor"]
        second = await sdk.list(limit=1, cursor=everything["nextCursor"])
        conforms(second, JOB_LIST)
        completed = await sdk.list(status="COMPLETED")
        conforms(completed, JOB_LIST)
        assert [j["id"] for j in completed["jobs"]] == [accepted["jobId"]]
        assert all(j["expired"] is False for j in completed["jobs"])
        failed_list = await sdk.list(status="FAILED")
        assert [(j["id"], j["expired"]) for j in failed_list["jobs"]] == [(failing["jobId"], False)]
        # the SDK's JobsListQuery also has include_models ("true" | "false"): JobList.models
        with_models = await sdk.list(status="FAILED", include_models="true")
        conforms(with_models, JOB_LIST)
        assert with_models["models"] == ["kling-3.0"]


@pytest.mark.parametrize("where", ["dialect port", "main port root"])
async def test_the_sdk_errors(gateway_ports: Served, where: str) -> None:
    key = await make_key(gateway_ports.db, f"errors-{where}", "100")
    broke = await make_key(gateway_ports.db, f"broke-{where}", "0")
    async with httpx.AsyncClient(timeout=30) as http:
        sdk = ApiframeClient(http, bases(gateway_ports)[where], key)
        other = ApiframeClient(http, sdk.base_url, "afk_vg_test_unknown")
        poor = ApiframeClient(http, sdk.base_url, broke)
        cases: list[tuple[Callable[[], Awaitable[dict[str, Any]]], int, Schema]] = [
            (lambda: sdk.generate({"model": "kling-3.0"}), 400, VALIDATION),
            (lambda: sdk.generate({**KLING, "klingParams": {"duration": 99}}), 400, VALIDATION),
            (lambda: sdk.generate({**KLING, "soraParams": {}}), 400, VALIDATION),
            (lambda: sdk.get("not-a-uuid"), 400, ERROR),
            (lambda: sdk.get(str(uuid.uuid4())), 404, ERROR),
            (lambda: sdk.list(status="DONE"), 400, ERROR),
            (lambda: other.get(str(uuid.uuid4())), 401, ERROR),
            (lambda: poor.generate(KLING), 402, INSUFFICIENT),
        ]
        for call, status, schema in cases:
            with pytest.raises(SdkError) as refused:
                await call()
            assert refused.value.status == status, refused.value
            conforms(refused.value.body, schema)
        missing = await http.get(sdk.url("/v2/jobs"))  # no X-API-Key at all
        assert missing.status_code == 401
        conforms(missing.json(), ERROR)
        short = await http.post(sdk.url("/v2/videos/generate"), json=KLING, headers={"x-api-key": broke})
        body = short.json()
        assert short.status_code == 402 and body["creditsRequired"] > body["creditsAvailable"]


async def test_a_dialect_port_keeps_the_gateway_paths_and_only_the_dialect(gateway_ports: Served) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{gateway_ports.dialect}/healthz")).status_code == 200
        # the native API is not on the dialect port: /v1/models is Apiframe's 404 there
        native = await http.get(f"{gateway_ports.dialect}/v1/models")
        assert native.status_code == 404 and isinstance(native.json()["error"], str)
        # and the main port still serves everything under its prefixes
        assert (await http.get(f"{gateway_ports.main}/apiframe/v2/models")).status_code == 200
        assert (await http.get(f"{gateway_ports.main}/v1/models")).status_code == 200
