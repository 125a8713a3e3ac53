"""The seed dialects: each module is a thin translation between one gateway's wire
format and ``GenerationRequest`` / ``Job``, calling ``JobService`` and nothing else.

Each module exposes ``PREFIX`` (where its clients point their base URL), ``router``
(an ``APIRouter`` mounted at that prefix) and ``render_error`` (its error envelope).
Adding a dialect is one module plus one line in ``DIALECTS`` (and one in
``WEBHOOK_FORMATS`` when it has a webhook format of its own).
"""

from __future__ import annotations

from types import ModuleType

from fastapi import FastAPI

from vidgate.api.dialects import apiframe, kyma, minimax, thalam, venice
from vidgate.api.errors import ErrorRouter
from vidgate.webhooks.formats import WebhookFormat

DIALECTS: tuple[ModuleType, ...] = (thalam, venice, minimax, apiframe, kyma)

WEBHOOK_FORMATS: dict[str, WebhookFormat] = {
    "minimax": WebhookFormat(minimax.render_webhook, minimax.webhook_handshake),
    "apiframe": WebhookFormat(apiframe.render_webhook),
}


def install(app: FastAPI, errors: ErrorRouter) -> None:
    for module in DIALECTS:
        errors.register(module.PREFIX, module.render_error)
        app.include_router(module.router, prefix=module.PREFIX)
