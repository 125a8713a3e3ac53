"""The API description is true (issue 12): every body documented, the key headers as
security schemes, unique operation ids, 400 (never 422) where the gateway answers 400,
admin routes only with the admin API on, and ``/docs`` served from vidgate itself."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import Gateway, _gateway, auth
from vidgate.config import Settings

# The only POST operations that take no body: they act on the object named in the path.
NO_BODY = {
    ("post", "/v1/videos/{video_id}/cancel"),
    ("post", "/v1/webhook_deliveries/{delivery_id}/replay"),
}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


@pytest.fixture
async def document(gateway: Gateway) -> dict[str, Any]:
    answer = await gateway.client.get("/openapi.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
async def admin_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async for running in _gateway(
        settings.model_copy(update={"admin_token": "admin-secret"}), run_worker=False
    ):
        yield running


def test_every_operation_that_takes_a_body_documents_it(document: dict[str, Any]) -> None:
    posts = [(m, p, op) for m, p, op in operations(document) if m in ("post", "put", "patch")]
    assert len(posts) >= 16  # 19 with the admin API on
    missing = [(m, p) for m, p, op in posts if "requestBody" not in op and (m, p) not in NO_BODY]
    assert not missing
    for method, path, operation in posts:
        if (method, path) in NO_BODY:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert schema.get("properties"), (path, schema)
    create = document["paths"]["/v1/videos"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(create)
    assert "prompt" in document["components"]["schemas"]["CreateVideo"]["properties"]


def test_security_schemes_come_from_the_key_headers(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    paths = document["paths"]
    assert paths["/v1/videos"]["post"]["security"] == [{"bearer": []}]
    assert paths["/apiframe/v2/videos/generate"]["post"]["security"] == [{"apiKey": []}]
    assert paths["/v1/models"]["get"]["security"] == []  # the catalog is public
    for method, path, operation in operations(document):
        names = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        assert not names & {"authorization", "x-api-key"}, (method, path)
        assert ("401" in operation["responses"]) == bool(operation["security"]), (method, path)


def test_operation_ids_are_unique_and_readable(document: dict[str, Any]) -> None:
    ids = Counter(op["operationId"] for _, _, op in operations(document))
    assert [name for name, count in ids.items() if count > 1] == []
    assert document["paths"]["/v1/videos"]["post"]["operationId"] == "videos_create_video"
    content = document["paths"]["/v1/videos/{video_id}/content"]
    assert (content["get"]["operationId"], content["head"]["operationId"]) == (
        "videos_video_content",
        "videos_video_content_head",
    )
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in ids)


async def test_400_is_documented_and_answered_where_422_was(
    gateway: Gateway, document: dict[str, Any]
) -> None:
    for method, path, operation in operations(document):
        assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
    key, _ = await gateway.account()
    # Query validation (FastAPI's own) and a hand-read body both answer 400, as documented.
    ledger = await gateway.client.get("/v1/account/ledger?limit=0", headers=auth(key))
    assert ledger.status_code == 400
    assert "400" in document["paths"]["/v1/account/ledger"]["get"]["responses"]
    create = await gateway.client.post("/v1/videos", json={"prompt": 5}, headers=auth(key))
    assert create.status_code == 400
    assert "400" in document["paths"]["/v1/videos"]["post"]["responses"]
    missing = await gateway.client.get("/v1/videos/video_nope", headers=auth(key))
    assert missing.status_code == 404
    assert "404" in document["paths"]["/v1/videos/{video_id}"]["get"]["responses"]


def test_files_are_documented_as_files(document: dict[str, Any]) -> None:
    content = document["paths"]["/v1/videos/{video_id}/content"]["get"]["responses"]["200"]["content"]
    assert {"video/mp4", "image/jpeg"} <= set(content)
    venice = document["paths"]["/venice/api/v1/video/retrieve"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "video/mp4"} <= set(venice)


async def test_admin_routes_only_when_the_admin_api_is_on(
    document: dict[str, Any], admin_gateway: Gateway
) -> None:
    assert not [p for p in document["paths"] if p.startswith("/admin")]
    assert "admin" not in document["components"]["securitySchemes"]
    assert "NewAccount" not in document["components"].get("schemas", {})
    with_admin = (await admin_gateway.client.get("/openapi.json")).json()
    admin_paths = [p for p in with_admin["paths"] if p.startswith("/admin")]
    assert "/admin/accounts" in admin_paths
    assert with_admin["paths"]["/admin/accounts"]["post"]["security"] == [{"admin": []}]
    assert "NewAccount" in with_admin["components"]["schemas"]


async def test_docs_and_their_assets_are_served_by_vidgate(gateway: Gateway) -> None:
    page = await gateway.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert "/openapi.json" in urls
    assets = [u for u in urls if u != "/openapi.json"]
    assert len(assets) == 3, urls
    for url in assets:
        assert url.startswith("/docs/assets/"), url  # nothing from a CDN
        answer = await gateway.client.get(url)
        assert answer.status_code == 200, url
        assert "immutable" in answer.headers["cache-control"]
        assert len(answer.content) > 1000
        again = await gateway.client.get(url, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304
    missing = await gateway.client.get("/docs/assets/000000000000/swagger-ui-bundle.js")
    assert missing.status_code == 404


async def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.core.result import Ok

    results = list(schemathesis.openapi.from_dict(document).get_all_operations())
    assert len(results) > 30
    assert [r for r in results if not isinstance(r, Ok)] == []
