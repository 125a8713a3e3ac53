"""What a dialect declares: one typed ``Dialect`` per module, read by the app and the edge.

A dialect module translates one gateway's wire format to ``GenerationRequest`` /
``Job`` and back, and ends with ``DIALECT = Dialect(...)``: where it is mounted,
its router and error envelope, how its clients send keys, its documented per-route
rate limits and header names, and, when it has one, its own webhook format. The
app mounts it, the rate limiter counts by it and the webhook sender renders by it;
nothing looks a dialect up by name or attribute at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter

from vidgate.api.auth import BEARER, KeyForm
from vidgate.api.errors import ErrorRenderer
from vidgate.api.ratelimit import LimitHeaders, RouteLimit
from vidgate.webhooks.formats import WebhookFormat

__all__ = ["Dialect", "KeyForm", "LimitHeaders", "RouteLimit"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """One seed gateway's API, served under ``prefix``.

    * ``name``: unique; what ``--dialect-port`` and ``VIDGATE_DIALECT_HOSTS`` call it,
      and the ``Job.dialect`` its webhook format renders for (a second mount of the
      same router, like ``minimax-native``, records the first one's name on its jobs);
    * ``keys``: the header and key prefixes its clients use;
    * ``route_limits``: per-route limits the service documents (paths relative to
      ``prefix``), on top of the account's own;
    * ``limit_headers``: its own names for the rate-limit headers, if any;
    * ``webhook``: its own webhook rendering (and handshake); None for the standard one;
    * ``root_paths``: path prefixes (like Apiframe's ``/v2/``) that clash with nothing
      else and are also served at the root of the main port, for clients that drop
      the base URL's path;
    * ``job_ids``: the job ids a public id in this dialect's form may name (a Venice
      queue id, a MiniMax task or file number, ...), so an operator can paste any id a
      client quotes; the default reads the native ``video_...`` id as it is.
    """

    name: str
    prefix: str
    router: APIRouter
    render_error: ErrorRenderer
    keys: KeyForm = BEARER
    route_limits: tuple[RouteLimit, ...] = ()
    limit_headers: LimitHeaders | None = None
    webhook: WebhookFormat | None = None
    root_paths: tuple[str, ...] = ()
    job_ids: Callable[[str], tuple[str, ...]] = lambda public_id: (public_id,)
