"""Webhook bodies and signatures (standardwebhooks), and finding a dialect's hooks."""

from __future__ import annotations

import json
import sys
import types
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from vidgate.delivery.formats import DialectHooks, SigningError, sign_headers, standard_body
from vidgate.delivery.routes import new_endpoint_secret

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_signed_headers_verify_with_the_library() -> None:
    secret = new_endpoint_secret()
    body = standard_body(None, "video.completed", AT, {"status": "succeeded"}, links=None)  # type: ignore[arg-type]
    assert json.loads(body) == {
        "type": "video.completed",
        "timestamp": "2026-03-01T12:00:00Z",
        "data": {"status": "succeeded"},
    }
    now = datetime.now(UTC)
    headers = sign_headers(secret, "msg_1", body, at=now)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(body, headers)["type"] == "video.completed"
    with pytest.raises(Exception, match="signature"):
        Webhook(new_endpoint_secret()).verify(body, headers)


def test_a_secret_that_is_not_base64_is_a_signing_error() -> None:
    with pytest.raises(SigningError):
        sign_headers("whsec_a", "msg_1", b"{}", at=AT)


def test_dialect_hooks_are_found_and_missing_ones_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = DialectHooks()
    assert hooks.renderer("native") is None
    assert hooks.renderer("no_such_dialect") is None
    assert hooks.handshake("") is None
    module = types.ModuleType("vidgate.api.dialects.unitfake")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert hooks.renderer("unitfake") is None

    def render(*args: object) -> tuple[bytes, dict[str, str]]:
        return b"x", {}

    monkeypatch.setattr(module, "render_webhook", render, raising=False)
    assert hooks.renderer("unitfake") is render  # looked up on each call
