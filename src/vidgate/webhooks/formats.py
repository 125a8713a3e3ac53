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

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from vidgate.domain.job import Job
from vidgate.media.links import MediaLinks
from vidgate.service.video_object import video_object

STANDARD = "standard"
EVENT_TYPES = (
    "video.queued",
    "video.progress",
    "video.completed",
    "video.failed",
    "video.expired",
    "video.canceled",
)

Handshake = tuple[bytes, Callable[[bytes], bool]]


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
    job: Job | None, event_type: str, at: datetime, payload: dict[str, Any], links: MediaLinks
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
    except Exception as exc:  # noqa: BLE001 (binascii.Error and the library's own errors)
        raise SigningError(f"the webhook secret cannot sign: {type(exc).__name__}") from None
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


Renderer = Callable[[Job, str, MediaLinks, str], tuple[bytes, dict[str, str]] | None]


@dataclass(frozen=True, slots=True)
class WebhookFormat:
    """A dialect's own webhook: how to render a job's event, and an optional handshake.

    ``render(job, event_type, links, key_secret_hash)`` gives the body and headers,
    or None when the dialect sends nothing for that event. ``handshake(url)`` gives
    the challenge to send before the first delivery to a URL, and a check of the answer.
    """

    render: Renderer
    handshake: Callable[[str], Handshake | None] | None = None


class DialectHooks:
    """The webhook formats of the dialects that have one, by dialect name."""

    def __init__(self, formats: Mapping[str, WebhookFormat] | None = None) -> None:
        self.formats: dict[str, WebhookFormat] = dict(formats or {})

    def renderer(self, dialect: str) -> Renderer | None:
        found = self.formats.get(dialect)
        return found.render if found else None

    def handshake(self, dialect: str) -> Callable[[str], Handshake | None] | None:
        found = self.formats.get(dialect)
        return found.handshake if found else None


def render_for_job(
    hooks: DialectHooks,
    job: Job,
    event_type: str,
    at: datetime,
    payload: dict[str, Any],
    links: MediaLinks,
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
