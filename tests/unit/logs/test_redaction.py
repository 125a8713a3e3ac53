from __future__ import annotations

import logging

import pytest

from vidgate.logs import RedactSecrets, redact

SECRETS = [
    "vg_test_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg",
    "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhIn0.sig",
    "https://queue.fal.run/x?fal_webhook=1&key=sk-proj-0123456789abcdef0123",
    "r8_0123456789abcdefABCDEF0123",
]


@pytest.mark.parametrize("text", SECRETS)
def test_secrets_are_masked(text: str) -> None:
    cleaned = redact(f"calling upstream with {text} now")
    assert "[REDACTED]" in cleaned
    assert text.split()[-1][-10:] not in cleaned


def test_filter_masks_formatted_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("vidgate.test.redaction")
    logger.addFilter(RedactSecrets())
    key = "vg_live_" + "x" * 40
    with caplog.at_level(logging.INFO, logger="vidgate.test.redaction"):
        logger.info("key was %s", key)
        try:
            raise RuntimeError(f"boom with {key}")
        except RuntimeError:
            logger.exception("failed")
    assert key not in caplog.text
    assert "vg_live_[REDACTED]" in caplog.text


def test_plain_text_is_untouched() -> None:
    assert redact("job video_123 succeeded in 4.2 s") == "job video_123 succeeded in 4.2 s"
