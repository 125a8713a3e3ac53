"""A small checker for the published-spec facts the dialect tests hold responses to.

Schemas are plain dicts in a JSON-Schema-like vocabulary, written by us from the
facts of each service's published spec (required fields, types, enums, formats):
``type`` (a name or a list of names, ``"null"`` included), ``required``,
``properties``, ``additional`` (a schema every other property must match),
``enum``, ``items``, ``format`` (``uuid``, ``date-time``, ``uri``), ``minimum``,
``maximum``, ``minItems``. ``check`` returns every violation with its JSON path.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

Schema = dict[str, Any]

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _format_ok(value: Any, fmt: str) -> bool:
    if not isinstance(value, str):
        return True  # the type check reports it
    try:
        if fmt == "uuid":
            return str(uuid.UUID(value)) == value.lower()
        if fmt == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return "T" in value
        if fmt == "uri":
            parsed = urlparse(value)
            return parsed.scheme in ("http", "https") and bool(parsed.netloc)
    except ValueError:
        return False
    raise ValueError(f"unknown format {fmt!r}")


def check(value: Any, schema: Schema, path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty when it conforms)."""
    problems: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__} {value!r:.80}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not one of {schema['enum']}")
    if "format" in schema and not _format_ok(value, schema["format"]):
        problems.append(f"{path}: {value!r} is not a {schema['format']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"{path}: missing required {name!r}")
        properties: dict[str, Schema] = schema.get("properties", {})
        for name, item in value.items():
            sub = properties.get(name, schema.get("additional"))
            if sub is not None:
                problems += check(item, sub, f"{path}.{name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                problems += check(item, schema["items"], f"{path}[{index}]")
    return problems


def conforms(value: Any, schema: Schema) -> None:
    problems = check(value, schema)
    assert not problems, "\n".join(problems)
