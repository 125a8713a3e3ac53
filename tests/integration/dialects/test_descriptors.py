"""The dialect registry is data: typed descriptors, and everything derived from them."""

from __future__ import annotations

import ast
from pathlib import Path

import vidgate.api.dialects as dialects_pkg
from vidgate.api.auth import KeyForm
from vidgate.api.dialects import DIALECTS, WEBHOOK_FORMATS, edge_rules, venice
from vidgate.api.ratelimit import EdgeRules, api_key_of

KEY = "vg_test_" + "k" * 43
SOURCES = [
    *Path(dialects_pkg.__file__).parent.glob("*.py"),
    Path(dialects_pkg.__file__).parent.parent / "native.py",
]


def test_names_and_prefixes_are_unique() -> None:
    assert len({d.name for d in DIALECTS}) == len(DIALECTS)
    assert len({d.prefix for d in DIALECTS}) == len(DIALECTS)
    assert {d.name for d in DIALECTS} == {"thalam", "venice", "minimax", "minimax-native", "apiframe", "kyma"}


def test_webhook_formats_come_from_the_descriptors() -> None:
    assert set(WEBHOOK_FORMATS) == {"minimax", "apiframe"}
    for dialect in DIALECTS:
        assert WEBHOOK_FORMATS.get(dialect.name) is dialect.webhook
    assert WEBHOOK_FORMATS["minimax"].handshake is not None
    assert WEBHOOK_FORMATS["apiframe"].handshake is None


def test_route_limits_are_absolute_paths_under_the_declaring_prefix() -> None:
    rules = edge_rules()
    assert rules.route_limits == {
        ("POST", "/venice/api/v1/video/queue"): 40,
        ("POST", "/venice/api/v1/video/retrieve"): 120,
    }
    assert rules.headers_for("/venice/api/v1/video/queue") == venice.LIMIT_HEADERS
    assert rules.headers_for("/venicex/api") is None
    assert rules.headers_for("/v1/videos") is None


def test_the_limiter_reads_exactly_the_declared_key_forms() -> None:
    """A new dialect's key form is learnt from its declaration; an undeclared one is not."""
    header = {b"x-custom-key": f"zz-{KEY}".encode()}
    assert api_key_of(header, edge_rules().key_forms) is None
    custom = EdgeRules(key_forms=(KeyForm(header="x-custom-key", prefixes=("zz-",)),))
    assert api_key_of(header, custom.key_forms) == KEY
    strict = KeyForm(prefixes=("tl-",), bare=False)
    assert strict.secret(KEY) is None and strict.secret("tl-" + KEY) == KEY


def test_dialect_modules_only_translate() -> None:
    """No dialect (nor the native API) reaches into the store or billing: they use the services."""
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
        offending = [m for m in imported if m.startswith(("vidgate.store", "vidgate.billing"))]
        assert not offending, f"{path.name} imports {offending}"
        assert "importlib" not in imported, path.name
