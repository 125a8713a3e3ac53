"""``/docs``: Swagger UI served by vidgate itself, so it works with no network.

The Swagger UI files come from the ``fastapi-offline`` package (its ``static``
folder: the bundle, the stylesheet and an icon); nothing else of that package is
used. They are read once, served under ``/docs/assets/<version>/`` with a hash of
their bytes as the version, and cached for good. The page is FastAPI's own Swagger
UI page pointed at those URLs, with the online validator switched off.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from vidgate.errors import NotFound

DOCS_URL = "/docs"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
UI_PARAMETERS = {"validatorUrl": None, "persistAuthorization": True, "displayOperationId": True}


@dataclass(frozen=True)
class DocsAssets:
    version: str
    files: dict[str, bytes]

    def url(self, name: str) -> str:
        return f"{DOCS_URL}/assets/{self.version}/{name}"


def load_assets() -> DocsAssets:
    folder = resources.files("fastapi_offline").joinpath("static")
    files = {name: folder.joinpath(name).read_bytes() for name in ASSETS}
    digest = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()[:12]
    return DocsAssets(digest, files)


def install(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """``GET /docs`` and its assets. The app must be built with ``docs_url=None``."""
    assets = load_assets()

    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=assets.url("swagger-ui-bundle.js"),
            swagger_css_url=assets.url("swagger-ui.css"),
            swagger_favicon_url=assets.url("favicon.png"),
            swagger_ui_parameters=UI_PARAMETERS,
        )

    async def docs_asset(version: str, name: str, request: Request) -> Response:
        if version != assets.version or name not in ASSETS:
            raise NotFound(f"no docs asset {version}/{name}")
        etag = f'"{assets.version}-{name}"'
        headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(assets.files[name], media_type=ASSETS[name], headers=headers)

    app.add_api_route(DOCS_URL, docs_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        DOCS_URL + "/assets/{version}/{name}", docs_asset, methods=["GET"], include_in_schema=False
    )
