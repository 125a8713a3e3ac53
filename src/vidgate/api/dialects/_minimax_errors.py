"""MiniMax's errors, two ways: Taam Cloud's HTTP statuses (the seed) or native MiniMax's.

Both bodies carry MiniMax's ``base_resp`` (codes from MiniMax's own error-code
table: 1000 unknown, 1001 timeout, 1002 rate limit, 1004 authentication, 1008
insufficient balance, 1026 sensitive input, 2013 invalid parameters, 2049 invalid
API key) and Taam's ``error`` object. They differ in the HTTP status:

* ``render_error`` (``/minimax``): Taam's page says standard HTTP codes, so a bad
  parameter is a 400, a bad key 401, a rate limit 429, an upstream failure 502/504;
* ``render_native_error`` (``/minimax-native``): native MiniMax answers business
  errors with HTTP 200 and the code in ``base_resp``; its client calls
  ``raise_for_status()`` first and then reads ``base_resp.status_code``. Only a
  path that does not exist (404/405) and an oversized body (413) keep their status.
"""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse, Response

from vidgate.api.errors import error_headers
from vidgate.errors import GatewayError, InsufficientFunds, PermissionDenied, UnknownModel

# vidgate's field names in messages -> MiniMax's.
_WIRE_NAMES = {
    "image_url": "first_frame_image",
    "last_frame_url": "last_frame_image",
    "reference_images": "subject_reference",
    "webhook_url": "callback_url",
}
_NAME_PATTERN = re.compile(r"\b(" + "|".join(_WIRE_NAMES) + r")\b")
_RESOLUTION_PATTERN = re.compile(r"\b(\d{3,4})p\b")

# base_resp codes (MiniMax's error-code page), by vidgate error code.
CODE_OF = {
    "content_policy_violation": 1026,
    "insufficient_balance": 1008,
    "spend_cap_exceeded": 1008,
    "rate_limit_exceeded": 1002,
    "missing_api_key": 1004,
    "invalid_api_key": 2049,
    "key_inactive": 1004,
    "internal_error": 1024,
    # why a task failed
    "upstream_rejected": 2013,
    "timeout": 1001,
    "upstream_timeout": 1001,
    "upstream_rate_limited": 1002,
}
# Taam's HTTP statuses where vidgate's differ (the seed has no 402 or 403).
_STATUS_OF: tuple[tuple[type[GatewayError], int], ...] = (
    (UnknownModel, 400),
    (InsufficientFunds, 400),
    (PermissionDenied, 401),
)


def code_of(error_code: str | None, status: int) -> int:
    """The ``base_resp.status_code`` for a vidgate error code (or an HTTP status)."""
    found = CODE_OF.get(error_code or "")
    if found is not None:
        return found
    if status == 401:
        return 1004
    if status == 429:
        return 1002
    if status == 504:
        return 1001
    if status >= 500:
        return 1024
    return 2013


def wire_message(message: str) -> str:
    """A message in MiniMax's words: its field names, its ``768P`` resolutions."""
    renamed = _NAME_PATTERN.sub(lambda m: _WIRE_NAMES[m.group(1)], message)
    return _RESOLUTION_PATTERN.sub(lambda m: f"{m.group(1)}P", renamed)


def _body(error: GatewayError, status: int) -> dict[str, object]:
    code = code_of(error.code, status)
    message = wire_message(error.message)
    if code == 2013 and not message.startswith("invalid params"):
        message = f"invalid params, {message}"
    return {
        "base_resp": {"status_code": code, "status_msg": message},
        "error": {"message": message, "code": code},
    }


def render_error(error: GatewayError) -> Response:
    """Taam's HTTP status, with MiniMax's ``base_resp`` and Taam's ``error`` in the body."""
    status = next((s for kind, s in _STATUS_OF if isinstance(error, kind)), error.status)
    return JSONResponse(_body(error, status), status_code=status, headers=error_headers(error))


def render_native_error(error: GatewayError) -> Response:
    """Native MiniMax: HTTP 200 with the error in ``base_resp`` (route errors keep theirs)."""
    status = next((s for kind, s in _STATUS_OF if isinstance(error, kind)), error.status)
    body = _body(error, status)
    keep = bool(error.extra.get("route")) or status == 413  # no such route, or a body too large to read
    return JSONResponse(body, status_code=status if keep else 200, headers=error_headers(error))
