"""The operator console: one static page at ``/admin``, served by the gateway itself.

``install`` adds:

* ``GET /admin``: the page (``admin/index.html``), with the playground's strict
  Content-Security-Policy; ``/admin/`` redirects to it. Loading the page needs no
  token: it holds no data, and every call it makes to the admin API sends the token
  the operator signs in with (kept in the tab's ``sessionStorage`` only).
* ``GET /admin/assets/<version>/<name>``: its modules and stylesheet, cached forever
  under a version that is a hash of every asset (as the playground's).

Nothing here shadows the admin API: the page is exactly ``/admin`` and the assets
live under ``/admin/assets/``, a path no API route uses. When ``enabled(request)``
says the admin API is off (no ``VIDGATE_ADMIN_TOKEN``), the page is a 404 like the API.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from vidgate.errors import NotFound
from vidgate.web import CSP, IMMUTABLE, REVALIDATE, Bundle, _send, bundle_of, read_folder

PAGE = "/admin"
ASSET_PREFIX = "/admin/assets"


def load_console() -> Bundle:
    """Read ``admin/`` (plus the playground's stylesheet as ``base.css``, so both pages
    share one look); the version is a hash over every asset's name and bytes."""
    package = resources.files("vidgate.web")
    raw = read_folder(package.joinpath("admin"))
    raw["base.css"] = package.joinpath("static", "app.css").read_bytes()
    return bundle_of(raw)


def install(app: FastAPI, *, enabled: Callable[[Request], bool]) -> None:
    bundle = load_console()

    def guard(request: Request) -> None:
        if not enabled(request):
            raise NotFound(f"no route for {request.method} {request.url.path}")

    async def page(request: Request) -> Response:
        guard(request)
        return _send(request, bundle.page, cache=REVALIDATE, extra={"Content-Security-Policy": CSP})

    async def page_slash(request: Request) -> Response:
        guard(request)
        return RedirectResponse(str(request.url.replace(path=PAGE)), status_code=308)

    async def asset(version: str, name: str, request: Request) -> Response:
        guard(request)
        found = bundle.assets.get(name)
        if found is None:
            raise NotFound(f"no console asset named {name!r}")
        return _send(request, found, cache=IMMUTABLE if version == bundle.version else REVALIDATE)

    app.add_api_route(PAGE, page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(PAGE + "/", page_slash, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        ASSET_PREFIX + "/{version}/{name}", asset, methods=["GET", "HEAD"], include_in_schema=False
    )
