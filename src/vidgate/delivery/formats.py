"""What a webhook says: the standard format, its signature, and the dialects' own formats.

The standard format is vidgate's (and the native API's): the body
``{"type", "timestamp", "data": <native video object>}`` signed by the Standard
Webhooks scheme (``webhook-id`` = the event's public id, stable across retries,
``webhook-timestamp``, ``webhook-signature``), through the ``standardwebhooks``
library, with the account's ``whsec_`` secret for a job's own ``webhook_url`` and
the endpoint's secret for an account endpoint.

A dialect with its own scheme (Apiframe's ``X-Webhook-Signature``, MiniMax's
query-shaped pushes) exposes two optional module attributes in
``vidgate.api.dialects.<name>``::

    render_webhook(job, event_type, links, key_secret_hash) -> (body, headers) | None
    webhook_handshake(url) -> (challenge_body, verify_response) | None

``render_webhook`` returning None means the job is not subscribed to that event;
``webhook_handshake`` (MiniMax's challenge) must succeed before anything is
pushed for the job. A dialect without them gets the standard format.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Protocol

from standardwebhooks import Webhook

from vidgate.api.native_schema import video_object
from vidgate.jobs.models import Job

STANDARD = "standard"
EVENT_TYPES = (
    "video.queued",
    "video.progress",
    "video.completed",
    "video.failed",
    "video.expired",
    "video.canceled",
)
DIALECTS_PACKAGE = "vidgate.api.dialects"

Handshake = tuple[bytes, Callable[[bytes], bool]]


class Links(Protocol):
    def url(self, job: Job, variant: str = "video") -> str | None: ...


class SigningError(Exception):
    """The secret cannot sign (not a valid ``whsec_`` base64 secret)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A webhook body ready to store (UTF-8 text), and the headers that do not change between attempts."""

    format: str
    body: str
    headers: dict[str, str]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def standard_body(
    job: Job | None, event_type: str, at: datetime, payload: dict[str, Any], links: Links
) -> bytes:
    """``{"type", "timestamp", "data"}``; ``data`` is the native video object (or the payload)."""
    data = video_object(job, links) if job is not None else payload
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return dumps({"type": event_type, "timestamp": stamp, "data": data})


def wants_standard(job: Job, event_type: str) -> bool:
    """A job's own ``webhook_events`` filter (None: every event); ``completed`` == ``video.completed``."""
    wanted = job.request.webhook_events
    if wanted is None:
        return True
    short = event_type.removeprefix("video.")
    return any(w in (event_type, short) for w in wanted)


def sign_headers(secret: str, msg_id: str, body: bytes, *, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the timestamp is the attempt's)."""
    try:
        signature = Webhook(secret).sign(msg_id, at, body.decode())
    except Exception as exc:  # binascii.Error and the library's own errors
        raise SigningError(f"the webhook secret cannot sign: {type(exc).__name__}") from None
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


class DialectHooks:
    """Finds (and remembers) each dialect module's optional webhook hooks."""

    def __init__(self, package: str = DIALECTS_PACKAGE) -> None:
        self.package = package
        self._modules: dict[str, ModuleType | None] = {}

    def module(self, dialect: str) -> ModuleType | None:
        if dialect in self._modules:
            return self._modules[dialect]
        found: ModuleType | None = None
        if dialect and dialect.isidentifier() and dialect != "native":
            name = f"{self.package}.{dialect}"
            try:
                found = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name not in (name, self.package):
                    raise
        self._modules[dialect] = found
        return found

    def renderer(self, dialect: str) -> Callable[..., tuple[bytes, dict[str, str]] | None] | None:
        # Looked up on each call (not cached), so a test may monkeypatch the attribute.
        render: Callable[..., tuple[bytes, dict[str, str]] | None] | None = getattr(
            self.module(dialect), "render_webhook", None
        )
        return render

    def handshake(self, dialect: str) -> Callable[[str], Handshake | None] | None:
        shake: Callable[[str], Handshake | None] | None = getattr(
            self.module(dialect), "webhook_handshake", None
        )
        return shake


def render_for_job(
    hooks: DialectHooks,
    job: Job,
    event_type: str,
    at: datetime,
    payload: dict[str, Any],
    links: Links,
    key_secret_hash: str,
) -> Rendered | None:
    """The job's own webhook for one event, in its dialect's format (None: not subscribed)."""
    render = hooks.renderer(job.dialect)
    if render is not None:
        out = render(job, event_type, links, key_secret_hash)
        if out is None:
            return None
        body, headers = out
        text = bytes(body).decode("utf-8")  # a body that is not UTF-8 is the renderer's bug: raises
        return Rendered(job.dialect, text, {str(k): str(v) for k, v in headers.items()})
    if not wants_standard(job, event_type):
        return None
    return Rendered(STANDARD, standard_body(job, event_type, at, payload, links).decode(), {})
