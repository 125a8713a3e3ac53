"""Webhook bodies and signatures (standardwebhooks), and finding a dialect's hooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from vidgate.api.webhooks import new_endpoint_secret
from vidgate.webhooks.formats import DialectHooks, SigningError, WebhookFormat, sign_headers, standard_body

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


def test_dialect_hooks_are_found_and_missing_ones_are_none() -> None:
    def render(*args: object) -> tuple[bytes, dict[str, str]]:
        return b"x", {}

    hooks = DialectHooks({"unitfake": WebhookFormat(render)})
    assert hooks.renderer("native") is None
    assert hooks.renderer("no_such_dialect") is None
    assert hooks.handshake("") is None
    assert hooks.renderer("unitfake") is render
    assert hooks.handshake("unitfake") is None
