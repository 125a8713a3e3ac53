"""HTTP plumbing every adapter shares: time limits, typed errors, streamed downloads.

Adapters call ``request_json`` instead of touching ``httpx`` errors themselves, so a
refused connection, a timeout, a 429 or a body that is not JSON always becomes the
same typed ``UpstreamError`` whatever the provider. Provider-specific meaning of a
4xx body (content policy, bad parameter) stays in the adapter, via ``classify``.

The call that creates an upstream job passes ``submit=True``: it gets the longer
``submit_timeout_s``, and its failures are classified here, once, into "provably
not accepted" and ``outcome_unknown`` (``transport_error``, ``accepted_id``,
``acceptance``).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import httpx

from vidgate.net.fetch import NOT_ALLOWED, FetchFailed, FetchRefused, fetch_bytes
from vidgate.providers.base import (
    JSON,
    CallbackRequest,
    CallbackResult,
    ProviderContext,
    SubmitAttempt,
    UpstreamAuthError,
    UpstreamError,
    UpstreamOutput,
    UpstreamOutputExpired,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

REQUEST_ID_HEADERS = (
    "x-request-id",
    "request-id",
    "x-fal-request-id",
    "cf-ray",
    "x-upstream-request-id",
)
CHUNK = 256 * 1024

# Optional hook: (status_code, parsed_body, request_id) -> an error, or None for the default.
Classifier = Callable[[int, Any, str | None], UpstreamError | None]
# The same, for upstreams whose error meaning is also in the headers (fal's x-fal-error-type).
ResponseClassifier = Callable[[httpx.Response, Any, str | None], UpstreamError | None]


def request_id_of(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if value := response.headers.get(name):
            return str(value)
    return None


def retry_after_of(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _message_of(body: Any, fallback: str) -> str:
    """Find a human message in the usual places of an error body."""
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "msg", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                return _message_of(value, fallback)
            if isinstance(value, list) and value:
                return _message_of(value[0], fallback) if isinstance(value[0], dict) else str(value[0])
    if isinstance(body, str) and body:
        return body[:500]
    return fallback


def error_for_status(
    status: int, body: Any, request_id: str | None, retry_after: float | None = None
) -> UpstreamError:
    """The default mapping from an HTTP error status to the error tree."""
    message = _message_of(body, f"upstream answered HTTP {status}")
    kwargs: dict[str, Any] = {"status_code": status, "request_id": request_id}
    if status == 429:
        return UpstreamRateLimited(message, retry_after_s=retry_after, **kwargs)
    if status in (401, 403):
        return UpstreamAuthError(message, **kwargs)
    if status == 408:
        return UpstreamTimeout(message, **kwargs)
    if status >= 500:
        return UpstreamUnavailable(message, retry_after_s=retry_after, **kwargs)
    return UpstreamRejected(message, **kwargs)


# Transport failures before a byte of the request could have reached the upstream.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)


def transport_error(exc: httpx.HTTPError, method: str, timeout_s: float, *, submit: bool) -> UpstreamError:
    """The typed error for a failed exchange. A submission whose request may have been
    sent (read/write timeout, reset, protocol error) has an unknown outcome."""
    unknown = submit and not isinstance(exc, _NOT_SENT)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{method} timed out after {timeout_s:g}s", outcome_unknown=unknown)
    return UpstreamUnavailable(f"could not reach the upstream: {type(exc).__name__}", outcome_unknown=unknown)


@contextmanager
def acceptance() -> Iterator[None]:
    """Read a 2xx answer to a submission: a protocol error inside means the upstream
    may have accepted the job although we cannot tell which (``outcome_unknown``)."""
    try:
        yield
    except UpstreamProtocolError as exc:
        exc.outcome_unknown = True
        raise


def accepted_id(body: Any, *path: str | int, request_id: str | None = None, what: str = "job id") -> str:
    """The upstream's id for a job it just accepted, found at ``path`` in a 2xx body.

    A missing or empty id is a wrongly shaped acceptance: ``outcome_unknown``."""
    value = dig(body, *path)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise UpstreamProtocolError(
            f"the upstream accepted the submission without a {what}",
            request_id=request_id,
            outcome_unknown=True,
        )
    return value


async def request_json(
    ctx: ProviderContext,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
    files: Any = None,
    data: Mapping[str, Any] | None = None,
    classify: Classifier | None = None,
    classify_response: ResponseClassifier | None = None,
    allow_empty: bool = False,
    submit: bool = False,
) -> tuple[Any, httpx.Response]:
    """Send one request and return ``(parsed JSON body, response)``.

    Raises a typed ``UpstreamError`` for every failure: transport errors, timeouts,
    non-2xx answers (through ``classify`` first, then the default mapping), and
    2xx answers whose body is not JSON. ``submit=True`` marks the call that creates
    an upstream job (longer time limit; ``outcome_unknown`` where it applies).
    """
    timeout = ctx.submit_timeout_s if submit else ctx.timeout_s
    try:
        response = await ctx.http.request(
            method,
            url,
            json=json_body,
            headers=dict(headers or {}),
            params=dict(params) if params else None,
            content=content,
            files=files,
            data=data,
            timeout=timeout,
        )
    except httpx.TransportError as exc:
        raise transport_error(exc, method, timeout, submit=submit) from exc

    request_id = request_id_of(response)
    raw = response.content
    body: Any
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")[:500]
        if response.is_success:
            raise UpstreamProtocolError(
                "upstream answered with a body that is not JSON",
                status_code=response.status_code,
                request_id=request_id,
                outcome_unknown=submit,
            ) from None
    if not response.is_success:
        custom = classify(response.status_code, body, request_id) if classify else None
        if custom is None and classify_response is not None:
            custom = classify_response(response, body, request_id)
        raise custom or error_for_status(response.status_code, body, request_id, retry_after_of(response))
    if body is None and not allow_empty:
        raise UpstreamProtocolError(
            "upstream answered with an empty body",
            status_code=response.status_code,
            request_id=request_id,
            outcome_unknown=submit,
        )
    return body, response


def expect_dict(body: Any, request_id: str | None = None) -> JSON:
    """Narrow a parsed body to a JSON object, or fail as a protocol error."""
    if not isinstance(body, dict):
        raise UpstreamProtocolError("expected a JSON object from the upstream", request_id=request_id)
    return body


def callback_url_for(ctx: ProviderContext, attempt: SubmitAttempt) -> str | None:
    """The callback URL to register for one submission: ours, with ``job=<job id>``
    added, so a callback that arrives before our commit still names its gateway job."""
    if not ctx.callback_url:
        return None
    sep = "&" if "?" in ctx.callback_url else "?"
    return f"{ctx.callback_url}{sep}{urlencode({'job': attempt.job_id})}"


def deep_merge(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``into`` in place: nested objects merge, anything else replaces.

    How every adapter lays catalog route params and a caller's provider options over
    the body it built; values are copied so the catalog's data is never aliased.
    """
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            deep_merge(current, value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def merge_under(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a caller's pass-through options (``provider_options``, Kyma ``extra``) UNDER
    ``into``, in place: they add keys, nested objects merge, and a value vidgate built or
    validated (an image URL, a duration, a callback) is never replaced by one of theirs.
    """
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merge_under(current, value)
        elif key not in into:
            into[key] = copy.deepcopy(value)
    return into


def unsigned_hint(call: CallbackRequest, *, id_field: str, status_field: str) -> CallbackResult | None:
    """An upstream's unsigned status push, read only as "poll this job now".

    None unless the body is a JSON object carrying a non-empty id (string or number)
    and a status word; never trusted for the status itself, since anyone could send it.
    """
    try:
        body = json.loads(call.body)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    upstream_id, status = body.get(id_field), body.get(status_field)
    if isinstance(upstream_id, bool) or not isinstance(upstream_id, str | int) or upstream_id == "":
        return None
    if not isinstance(status, str):
        return None
    return CallbackResult(upstream_id=str(upstream_id), verified=False)


def dig(body: Any, *path: str | int) -> Any:
    """``body[p0][p1]...`` or None when any step is missing; never raises."""
    node = body
    for step in path:
        if isinstance(step, int) and isinstance(node, list) and -len(node) <= step < len(node):
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict):
            node = node.get(step)
        else:
            return None
    return node


async def stream_http_output(ctx: ProviderContext, output: UpstreamOutput) -> AsyncIterator[bytes]:
    """Download one output URL in chunks. 403/404/410 mean the URL has expired."""
    try:
        async with ctx.http.stream(
            "GET", output.url, headers=dict(output.headers), timeout=max(ctx.timeout_s, 60.0)
        ) as response:
            if response.status_code in (403, 404, 410):
                raise UpstreamOutputExpired(
                    f"output URL answered HTTP {response.status_code}",
                    status_code=response.status_code,
                    request_id=request_id_of(response),
                )
            if not response.is_success:
                await response.aread()
                raise error_for_status(response.status_code, response.text[:300], request_id_of(response))
            async for chunk in response.aiter_bytes(CHUNK):
                yield chunk
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout("download of the output timed out") from exc
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(f"download failed: {type(exc).__name__}") from exc


USER_INPUT_MAX_BYTES = 20 * 1024 * 1024
USER_INPUT_TIMEOUT_S = 30.0  # in all, for one input a user named by URL


async def fetch_user_input(
    ctx: ProviderContext,
    url: str,
    *,
    max_bytes: int = USER_INPUT_MAX_BYTES,
    timeout_s: float = USER_INPUT_TIMEOUT_S,
) -> tuple[bytes, str]:
    """An input a user named by URL (an image to upload inline): (bytes, content type).

    Only through ``ctx.user_http``, the pinned client that checks every connection and
    every redirect hop (``vidgate.net.fetch``); capped in size and time. A refusal is
    ``UpstreamRejected("input URL not allowed")`` and no error ever quotes what the URL
    answered."""
    if ctx.user_http is None:
        raise UpstreamRejected(f"{NOT_ALLOWED}: this gateway fetches no input URLs")
    try:
        return await fetch_bytes(
            ctx.user_http, url, param="image_url", max_bytes=max_bytes, timeout_s=timeout_s
        )
    except (FetchRefused, FetchFailed) as exc:
        raise UpstreamRejected(exc.message) from None
