"""Errors the gateway answers a caller with, independent of any wire dialect.

Each dialect renders these in its own error envelope (see ``vidgate.api.errors``);
the ``code`` is the stable machine word, ``param`` names the offending field in
vidgate's own vocabulary (``duration``, ``image_url``...), which dialects may rename.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base class: an answer to the caller, never a crash."""

    status: int = 400
    code: str = "invalid_request"
    type: str = "invalid_request_error"

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.extra = extra


class InvalidRequest(GatewayError):
    """The request is malformed or breaks the model's constraints."""


class UnknownModel(GatewayError):
    """No catalog entry with that id (in the caller's dialect)."""

    status = 404
    code = "model_not_found"


class ModelUnavailable(GatewayError):
    """The model is listed but cannot be ordered now (coming soon, no enabled route)."""

    status = 400
    code = "model_unavailable"


class NotFound(GatewayError):
    """No such object, or it belongs to another account (we never say which)."""

    status = 404
    code = "not_found"
    type = "not_found_error"


class AuthenticationFailed(GatewayError):
    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    code = "permission_denied"
    type = "permission_error"


class InsufficientFunds(GatewayError):
    """The hold could not be placed: balance or a spend cap is too low."""

    status = 402
    code = "insufficient_balance"
    type = "insufficient_funds"

    def __init__(
        self, message: str, *, required_micros: int = 0, available_micros: int = 0, **extra: Any
    ) -> None:
        super().__init__(message, **extra)
        self.required_micros = required_micros
        self.available_micros = available_micros


class Conflict(GatewayError):
    """E.g. an idempotency key reused with a different body, or a state that forbids the call."""

    status = 409
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: int, limit: int, reset_at: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.limit = limit
        self.reset_at = reset_at


class ServiceUnavailable(GatewayError):
    """A dependency (the database) is unreachable for now; the request changed nothing.

    Answered as 503 with ``Retry-After``, so that clients retry instead of giving up.
    """

    status = 503
    code = "service_unavailable"
    type = "api_error"

    def __init__(self, message: str, *, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamFailed(GatewayError):
    """An upstream failed at submit time (nothing was charged)."""

    status = 502
    code = "upstream_error"
    type = "api_error"

    def __init__(self, message: str, *, status: int = 502, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id
