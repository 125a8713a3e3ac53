"""The seed dialects: each module is a thin translation between one gateway's wire
format and ``GenerationRequest`` / ``Job``, calling ``JobService`` and nothing else.

Each module exposes ``PREFIX`` (where its clients point their base URL), ``router``
(an ``APIRouter`` mounted at that prefix) and ``render_error`` (its error envelope).
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from vidgate.api.errors import ErrorRouter

DIALECTS = ("thalam", "venice", "minimax", "apiframe", "kyma")


def install(app: FastAPI, errors: ErrorRouter) -> None:
    for name in DIALECTS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        errors.register(module.PREFIX, module.render_error)
        app.include_router(module.router, prefix=module.PREFIX)
