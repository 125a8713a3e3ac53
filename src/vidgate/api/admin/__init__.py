"""The admin API at ``/admin``: everything an operator does, the console included.

Enabled only when ``VIDGATE_ADMIN_TOKEN`` is set (see ``access``). One router per
concern; each action that changes something is recorded in the audit trail, in the
transaction that carries it out. The operator console (``vidgate.web.console``) is
served at ``/admin`` next to it and calls nothing but this API.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from vidgate.api.admin import accounts, audit_log, jobs, providers, reports, routes
from vidgate.api.context import services
from vidgate.web import console


def install(app: FastAPI) -> None:
    app.include_router(accounts.router)
    app.include_router(routes.router)
    app.include_router(reports.router)
    app.include_router(jobs.router)
    app.include_router(providers.router)
    app.include_router(audit_log.router)
    console.install(app, enabled=_enabled)


def _enabled(request: Request) -> bool:
    """The console is on exactly when the admin API is (``VIDGATE_ADMIN_TOKEN`` set)."""
    return bool(services(request).settings.admin_token)
