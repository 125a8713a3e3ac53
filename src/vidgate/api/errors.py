"""Rendering errors in the caller's dialect.

Errors about the path itself (no such route, method not allowed) carry
``extra["route"] = True``, for dialects whose other errors do not use HTTP statuses.

Each dialect registers an ``ErrorRenderer`` for its URL prefix; the app's exception
handlers find the renderer by the request path (longest prefix wins), so the same
``GatewayError`` is an OpenAI envelope on ``/v1``, a zod-style tree on Venice, a
``base_resp`` on MiniMax. Nothing here knows any dialect by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidgate.errors import GatewayError, InvalidRequest, NotFound, RateLimited, ServiceUnavailable

log = logging.getLogger(__name__)

ErrorRenderer = Callable[[GatewayError], Response]


def openai_error(error: GatewayError) -> Response:
    """The OpenAI error envelope, vidgate's native form."""
    body: dict[str, Any] = {
        "error": {
            "message": error.message,
            "type": error.type,
            "code": error.code,
            "param": error.param,
        }
    }
    return JSONResponse(body, status_code=error.status, headers=error_headers(error))


def error_headers(error: GatewayError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited | ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after_s)
    request_id = getattr(error, "request_id", None)
    if request_id:
        headers["x-upstream-request-id"] = request_id
    return headers


class ErrorRouter:
    """Prefix -> renderer; the longest matching prefix wins, the native form otherwise."""

    def __init__(self) -> None:
        self._renderers: list[tuple[str, ErrorRenderer]] = []

    def register(self, prefix: str, renderer: ErrorRenderer) -> None:
        self._renderers.append((prefix.rstrip("/"), renderer))
        self._renderers.sort(key=lambda item: len(item[0]), reverse=True)

    def renderer_for(self, path: str) -> ErrorRenderer:
        for prefix, renderer in self._renderers:
            if path == prefix or path.startswith(prefix + "/"):
                return renderer
        return openai_error

    def render(self, request: Request, error: GatewayError) -> Response:
        return self.renderer_for(request.url.path)(error)


def _describe(errors: list[Any]) -> tuple[str, str | None]:
    """One readable sentence from pydantic's error list, naming the field."""
    first = errors[0] if errors else {}
    location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(location) or None
    message = first.get("msg", "invalid request")
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    if first.get("type") == "missing":
        return f"{param} is required", param
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI, router: ErrorRouter) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway(request: Request, exc: GatewayError) -> Response:
        return router.render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message, param = _describe(list(exc.errors()))
        return router.render(request, InvalidRequest(message, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            error: GatewayError = NotFound(f"no route for {request.method} {request.url.path}", route=True)
        elif exc.status_code == 405:
            error = InvalidRequest(
                f"{request.method} is not allowed on {request.url.path}",
                code="method_not_allowed",
                route=True,
            )
            error.status = 405
        else:
            error = InvalidRequest(str(exc.detail))
            error.status = exc.status_code
        return router.render(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:  # noqa: ARG001
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = GatewayError("internal error; the request changed nothing", code="internal_error")
        error.status, error.type = 500, "api_error"
        return router.render(request, error)
