"""The API description made true: what FastAPI generates, corrected after the fact.

FastAPI documents what it can see in a handler's signature. vidgate's handlers read
most bodies themselves (a dialect owns its wire shape and its error envelope), so the
raw document misses those bodies, lists the key headers as plain parameters, repeats
the operation id of a GET/HEAD pair, and advertises 422 where the gateway answers 400.
``finish`` fixes each of these from facts the document already holds, with no table
of routes:

- a body declared on a decorator with ``openapi_extra=json_body(...)`` has its
  ``$defs`` lifted into ``components.schemas``;
- an ``Authorization`` header parameter becomes the ``bearer`` security scheme (the
  ``admin`` scheme on admin routes), an ``X-API-Key`` parameter the ``apiKey`` scheme;
- operation ids are ``<tag>_<handler>`` (``_head`` for the HEAD twin), unique;
- 422 is gone; 400, 401, 404, 413 and 429 are listed where they can happen, and a
  ``default`` response names the dialect's error envelope for the rest;
- with the admin API off (no ``VIDGATE_ADMIN_TOKEN``) the admin routes are not listed.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

ADMIN_TAG = "admin"
LIFT = "x-vidgate-components"  # schemas a decorator hands to ``finish`` for components
SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A vidgate API key (vg_live_... or vg_test_...), with the dialect's prefix if any.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A vidgate API key, plain or behind Apiframe's afk_ prefix.",
    },
    "admin": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's VIDGATE_ADMIN_TOKEN.",
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error in this API's own envelope (OpenAI's on /v1, each dialect's under its prefix).",
}
ERRORS = {
    "400": "The request is malformed or breaks the model's constraints",
    "401": "No API key, or one that is unknown or revoked",
    "404": "No such object for this account",
    "413": "The body is larger than VIDGATE_MAX_BODY_BYTES",
    "429": "Rate limited: wait Retry-After seconds",
}


def json_body(
    schema: type[BaseModel] | dict[str, Any],
    *,
    description: str = "",
    multipart: bool = False,
    required: bool = True,
) -> dict[str, Any]:
    """``openapi_extra`` for a handler that reads its own JSON body.

    ``schema`` is a pydantic model or a JSON schema; ``multipart`` also documents the
    same fields as a form (files where the schema says ``format: binary``).
    """
    lifted: dict[str, Any] = {}
    if isinstance(schema, dict):
        body = schema
    else:  # a named component, lifted into components.schemas by ``finish``
        full = schema.model_json_schema(ref_template="#/components/schemas/{model}")
        lifted = {**full.pop("$defs", {}), schema.__name__: full}
        body = {"$ref": f"#/components/schemas/{schema.__name__}"}
    content: dict[str, Any] = {"application/json": {"schema": body}}
    if multipart:
        content["multipart/form-data"] = {"schema": body}
    request_body: dict[str, Any] = {"required": required, "content": content}
    if description:
        request_body["description"] = description
    extra: dict[str, Any] = {"requestBody": request_body}
    if lifted:
        extra[LIFT] = lifted
    return extra


def obj(
    required: Iterable[str] = (), *, closed: bool = False, **properties: dict[str, Any]
) -> dict[str, Any]:
    """A small JSON-schema object: ``obj(["model"], model=STRING, duration=INTEGER)``."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    needed = list(required)
    if needed:
        schema["required"] = needed
    if closed:
        schema["additionalProperties"] = False
    return schema


def media_response(*types: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a handler whose 200 is a file (or JSON until the file is ready)."""
    content = {kind: {"schema": OBJECT if kind == "application/json" else BINARY} for kind in types}
    return {200: {"description": "The file (byte ranges work)", "content": content}}


def video_responses() -> dict[int | str, dict[str, Any]]:
    """``responses=`` for retrieve: the video object, or 304 while ``If-None-Match`` matches."""
    return {
        200: {
            "description": "The video object (with a weak ETag)",
            "content": {"application/json": {"schema": OBJECT}},
        },
        304: {"description": "Not modified: If-None-Match names the current ETag (no body)"},
    }


def header_parameters(**headers: str | None) -> dict[str, Any]:
    """``openapi_extra`` documenting optional headers a handler reads itself, as FastAPI
    documents ``Header()`` parameters (``prefer`` may repeat; ``authorization`` becomes
    the security requirement). Keyword ``if_none_match`` names ``If-None-Match``."""
    parameters = []
    for name, description in headers.items():
        title = "-".join(part.capitalize() for part in name.split("_"))
        value: dict[str, Any] = {"type": "string"}
        if name == "prefer":
            value = {"type": "array", "items": {"type": "string"}}
        schema: dict[str, Any] = {"anyOf": [value, {"type": "null"}], "title": title}
        parameter: dict[str, Any] = {"name": name.replace("_", "-"), "in": "header", "required": False}
        if description is not None:
            schema["description"] = parameter["description"] = description
        parameters.append(parameter | {"schema": schema})
    return {"parameters": parameters}


def error_responses(codes: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for statuses particular to one operation, in the dialect's error envelope."""
    return {code: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for code, text in codes.items()}  # fmt: skip


STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
OBJECT: dict[str, Any] = {"type": "object"}
STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


def install(app: FastAPI, *, admin_enabled: bool) -> None:
    """Replace ``app.openapi`` with FastAPI's own document passed through ``finish``."""
    hidden = () if admin_enabled else (ADMIN_TAG,)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with warnings.catch_warnings():  # the GET/HEAD twins share an id until ``finish``
                warnings.filterwarnings("ignore", "Duplicate Operation ID")
                raw = copy.deepcopy(FastAPI.openapi(app))
            app.openapi_schema = finish(raw, hidden_tags=hidden)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict[str, Any], *, hidden_tags: Iterable[str] = ()) -> dict[str, Any]:
    """The corrections listed in the module docstring, applied to a generated document."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    hidden = set(hidden_tags)
    used_schemes: set[str] = set()
    seen_ids: set[str] = set()
    for path in list(document.get("paths", {})):
        operations = document["paths"][path]
        for method in list(operations):
            operation = operations[method]
            if hidden & set(operation.get("tags", [])):
                del operations[method]
                continue
            _lift_defs(operation, schemas)
            schemes = _security(operation)
            used_schemes.update(schemes)
            _operation_id(operation, path, method, seen_ids)
            _responses(operation, path, secured=bool(schemes))
        if not operations:
            del document["paths"][path]
    _prune_schemas(document)
    components["securitySchemes"] = {name: SCHEMES[name] for name in SCHEMES if name in used_schemes}
    if not components.get("schemas"):
        components.pop("schemas", None)
    return document


def _prune_schemas(document: dict[str, Any]) -> None:
    """Drop component schemas no operation refers to (422's, hidden routes' bodies)."""
    schemas: dict[str, Any] = document["components"].get("schemas", {})
    reachable: set[str] = set()
    pending = _refs(document.get("paths", {}))
    while pending:
        name = pending.pop()
        if name in reachable or name not in schemas:
            continue
        reachable.add(name)
        pending |= _refs(schemas[name])
    for name in set(schemas) - reachable:
        del schemas[name]


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _lift_defs(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    schemas.update(operation.pop(LIFT, {}))
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schemas.update(media.get("schema", {}).pop("$defs", {}))


def _security(operation: dict[str, Any]) -> list[str]:
    """Key headers become security requirements (any one of them will do)."""
    parameters = operation.get("parameters", [])
    keep, schemes = [], []
    admin = ADMIN_TAG in operation.get("tags", [])
    for parameter in parameters:
        name = parameter["name"].lower() if parameter.get("in") == "header" else ""
        if name == "authorization":
            schemes.append("admin" if admin else "bearer")
        elif name == "x-api-key":
            schemes.append("apiKey")
        else:
            keep.append(parameter)
    if keep:
        operation["parameters"] = keep
    else:
        operation.pop("parameters", None)
    operation["security"] = [{name: []} for name in schemes]
    return schemes


def _operation_id(operation: dict[str, Any], path: str, method: str, seen: set[str]) -> None:
    """``<first tag>_<handler name>``, ``_head`` for HEAD, a number if still taken.

    FastAPI's id is ``<handler><path>_<method>`` with non-word characters as ``_``;
    the handler's name is what stands before the path part.
    """
    generated = operation.get("operationId", method)
    marker = re.sub(r"\W", "_", path) + "_"
    handler = generated[: generated.rfind(marker)] if marker in generated else generated
    tags = operation.get("tags") or ["vidgate"]
    base = re.sub(r"\W", "_", f"{tags[0]}_{handler}")
    if method == "head":
        base += "_head"
    candidate, number = base, 2
    while candidate in seen:
        candidate, number = f"{base}_{number}", number + 1
    seen.add(candidate)
    operation["operationId"] = candidate


def _responses(operation: dict[str, Any], path: str, *, secured: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    wanted = ["400"] if operation.get("parameters") or operation.get("requestBody") else []
    if secured:
        wanted += ["401", "429"]
    if "{" in path:
        wanted.append("404")
    if "requestBody" in operation:
        wanted.append("413")
    error = {"application/json": {"schema": ERROR_SCHEMA}}
    for code in sorted(wanted):
        responses.setdefault(code, {"description": ERRORS[code], "content": error})
    responses.setdefault("default", {"description": "Any other error", "content": error})
