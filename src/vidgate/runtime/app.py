"""The HTTP process: the API app with its services built at start-up for the role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vidgate.api.app import create_api
from vidgate.api.baseurl import BaseUrl
from vidgate.config import Settings
from vidgate.runtime.roles import Role
from vidgate.runtime.services import build_runtime


def create_app(
    settings: Settings,
    *,
    role: Role = Role.ALL,
    run_worker: bool | None = None,
    env: dict[str, str] | None = None,
) -> FastAPI:
    """The app for ``vidgate serve`` (``Role.ALL``) or ``serve --no-worker`` (``Role.API``).

    ``run_worker=False`` keeps the role's services but starts no background loop
    (tests step jobs by hand through ``app.state.runtime.worker``).
    """
    memo = BaseUrl()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, role, env=env)
        runtime.base_url = memo
        app.state.runtime = runtime
        app.state.services = runtime.services
        runtime.start(loops=run_worker)
        try:
            yield
        finally:
            await runtime.close()

    return create_api(settings, lifespan=lifespan, base_url=memo)
