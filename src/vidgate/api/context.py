"""Everything a request handler may use, built once per process by the composition root.

No module-level globals: tests build their own ``Services`` with their own
database, storage and providers, and several apps can live in one process. The
app keeps it on ``app.state.services``; handlers read it through ``services``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request

from vidgate.catalog.loader import Catalog
from vidgate.config import Settings
from vidgate.media.storage import Storage
from vidgate.net.urlguard import UrlGuard
from vidgate.observability.health import Ops
from vidgate.service.accounts import AccountService
from vidgate.service.attempts import SubmitAttempts
from vidgate.service.jobs import JobService
from vidgate.service.lifecycle import JobLifecycle
from vidgate.service.routes import RouteSettings
from vidgate.store.engine import Database
from vidgate.worker.providers import ProviderPool


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    storage: Storage
    http: httpx.AsyncClient
    pool: ProviderPool
    jobs: JobService
    lifecycle: JobLifecycle
    attempts: SubmitAttempts
    accounts: AccountService
    guard: UrlGuard
    signing_secret: bytes
    wake_worker: Callable[[], None]
    ops: Ops  # metrics, readiness checks, store gauges of this process
    routes: RouteSettings  # live route settings (order, enabled, weights, policy)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def current_services(request: Request) -> Services:
    """``services`` as a dependency: async, because FastAPI runs a plain function on a thread."""
    return services(request)


Svc = Annotated[Services, Depends(current_services)]
