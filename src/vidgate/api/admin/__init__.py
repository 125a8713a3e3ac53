"""The admin API at ``/admin``: everything an operator does, the console included.

Enabled only when ``VIDGATE_ADMIN_TOKEN`` is set (see ``access``). One router per
concern; each action that changes something is recorded in the audit trail, in the
transaction that carries it out.
"""

from __future__ import annotations

from fastapi import FastAPI

from vidgate.api.admin import accounts, reports, routes


def install(app: FastAPI) -> None:
    app.include_router(accounts.router)
    app.include_router(routes.router)
    app.include_router(reports.router)
