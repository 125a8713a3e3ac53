"""Everything a request handler may use, built once at start-up and kept on ``app.state``.

No module-level globals: tests build their own ``Services`` with their own
database, storage and providers, and several apps can live in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import Request

from vidgate.catalog.loader import Catalog
from vidgate.config import Settings
from vidgate.jobs.service import JobService
from vidgate.media.storage import Storage
from vidgate.store.engine import Database
from vidgate.worker.loop import Worker
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
    worker: Worker
    signing_secret: bytes


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
