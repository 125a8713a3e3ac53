"""The seed dialects: each module is a thin translation between one gateway's wire
format and ``GenerationRequest`` / ``Job``, calling the services and nothing else.

Each module ends with one ``DIALECT`` (``vidgate.api.dialects.base.Dialect``): its
prefix, router, error envelope, key forms, rate-limit rules and optional webhook
format. Adding a dialect is one module plus one line in ``DIALECTS``.
"""

from __future__ import annotations

from fastapi import FastAPI

from vidgate.api.auth import BEARER
from vidgate.api.dialects import apiframe, kyma, minimax, thalam, venice
from vidgate.api.dialects.base import Dialect
from vidgate.api.dialects.roots import RootMap, parse_pairs
from vidgate.api.errors import ErrorRouter
from vidgate.api.ratelimit import EdgeRules
from vidgate.config import Settings
from vidgate.webhooks.formats import WebhookFormat

DIALECTS: tuple[Dialect, ...] = (
    thalam.DIALECT,
    venice.DIALECT,
    minimax.DIALECT,
    minimax.NATIVE_DIALECT,
    apiframe.DIALECT,
    kyma.DIALECT,
)

WEBHOOK_FORMATS: dict[str, WebhookFormat] = {d.name: d.webhook for d in DIALECTS if d.webhook is not None}


def job_ids_for(public_id: str) -> list[str]:
    """Every job id ``public_id`` may name in any dialect's form, native id first, no repeats."""
    found = [public_id] + [job_id for d in DIALECTS for job_id in d.job_ids(public_id)]
    return list(dict.fromkeys(found))


def install(app: FastAPI, errors: ErrorRouter) -> None:
    for dialect in DIALECTS:
        errors.register(dialect.prefix, dialect.render_error)
        app.include_router(dialect.router, prefix=dialect.prefix)


def edge_rules() -> EdgeRules:
    """The key forms, route limits and limit-header names every dialect declares."""
    forms = tuple(dict.fromkeys((BEARER, *(d.keys for d in DIALECTS))))
    routes = {
        (limit.method.upper(), d.prefix.rstrip("/") + limit.path): limit.per_minute
        for d in DIALECTS
        for limit in d.route_limits
    }
    headers = sorted(
        ((d.prefix, d.limit_headers) for d in DIALECTS if d.limit_headers is not None),
        key=lambda item: len(item[0]),
        reverse=True,
    )
    return EdgeRules(key_forms=forms, route_limits=routes, limit_headers=tuple(headers))


def root_map(settings: Settings, *, ports: dict[str, str] | None = None) -> RootMap:
    """Where dialects are served at the root: ``settings.dialect_ports`` (plus ``ports``),
    ``settings.dialect_hosts`` and each dialect's own ``root_paths``; raises RootConfigError."""
    prefixes = {d.name: d.prefix for d in DIALECTS}
    by_port = parse_pairs(settings.dialect_ports, "VIDGATE_DIALECT_PORTS") | (ports or {})
    return RootMap.build(
        prefixes,
        ports=by_port,
        hosts=parse_pairs(settings.dialect_hosts, "VIDGATE_DIALECT_HOSTS"),
        root_paths=[(root, d.prefix) for d in DIALECTS for root in d.root_paths],
    )
