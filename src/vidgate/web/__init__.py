"""The playground and dashboard: one static page served by the gateway itself.

``install`` adds, to the app the factory builds:

* ``GET /`` and ``GET /playground``: the page (``static/index.html``), never cached
  without revalidation, with a strict Content-Security-Policy (nothing is loaded
  from anywhere but this origin; media and thumbnails may come from the configured
  storage's signed URLs).
* ``GET /playground/assets/<version>/<name>``: the page's modules, stylesheet and
  icon. ``<version>`` is a hash of every asset, so one release's files are cached
  forever (``immutable``) and the next release's page asks for new URLs; relative
  ``import``s between the modules inherit the versioned folder.

The files are package data read once at install: there is no build step and no
framework, and the page talks to the public ``/v1`` API with the key the user
signs in with (kept in the browser's ``sessionStorage`` only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from vidgate.errors import NotFound

ASSET_PREFIX = "/playground/assets"
VERSION_MARK = "__ASSET_VERSION__"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# Everything from this origin; pictures and video also from signed storage URLs,
# user-pasted image URLs (the preview), and data:/blob: for uploads.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: https: http:",
        "media-src 'self' blob: https: http:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """The page and its assets, read from package data."""

    version: str
    page: Asset
    assets: dict[str, Asset]


def _asset(body: bytes, name: str) -> Asset:
    suffix = name[name.rfind(".") :]
    digest = hashlib.sha256(body).hexdigest()[:20]
    return Asset(body, CONTENT_TYPES.get(suffix, "application/octet-stream"), f'"{digest}"')


def load_bundle() -> Bundle:
    """Read ``static/``: the version is a hash over every asset's name and bytes."""
    return bundle_of(read_folder(resources.files(__name__).joinpath("static")))


def read_folder(folder: Traversable) -> dict[str, bytes]:
    """Every file of a package folder by name (dot files left out)."""
    return {e.name: e.read_bytes() for e in folder.iterdir() if e.is_file() and not e.name.startswith(".")}


def bundle_of(raw: dict[str, bytes]) -> Bundle:
    """A page (``index.html``) and its assets; the version, a hash over every asset's name
    and bytes, is written into the page where it says ``VERSION_MARK``."""
    raw = dict(raw)
    page_raw = raw.pop("index.html")
    hasher = hashlib.sha256()
    for name in sorted(raw):
        hasher.update(name.encode() + b"\0" + raw[name] + b"\0")
    version = hasher.hexdigest()[:12]
    page = page_raw.replace(VERSION_MARK.encode(), version.encode())
    return Bundle(
        version=version,
        page=_asset(page, "index.html"),
        assets={name: _asset(body, name) for name, body in raw.items()},
    )


def _send(request: Request, asset: Asset, *, cache: str, extra: dict[str, str] | None = None) -> Response:
    headers = {"Cache-Control": cache, "ETag": asset.etag, **SECURITY_HEADERS, **(extra or {})}
    if asset.etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    headers["Content-Length"] = str(len(asset.body))
    return Response(body, headers=headers, media_type=asset.content_type)


def install(app: FastAPI) -> None:
    """Serve the playground at ``/`` and ``/playground`` from this process (native error form)."""
    bundle = load_bundle()
    app.state.web_bundle = bundle

    async def page(request: Request) -> Response:
        return _send(request, bundle.page, cache=REVALIDATE, extra={"Content-Security-Policy": CSP})

    async def page_slash(request: Request) -> Response:
        return RedirectResponse(str(request.url.replace(path="/playground")), status_code=308)

    async def asset(version: str, name: str, request: Request) -> Response:
        found = bundle.assets.get(name)
        if found is None:
            raise NotFound(f"no playground asset named {name!r}")
        # An old page asking for an old version gets today's file, revalidated each time.
        return _send(request, found, cache=IMMUTABLE if version == bundle.version else REVALIDATE)

    async def favicon(request: Request) -> Response:
        return _send(request, bundle.assets["favicon.svg"], cache="public, max-age=86400")

    for path in ("/", "/playground"):
        app.add_api_route(path, page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/playground/", page_slash, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        ASSET_PREFIX + "/{version}/{name}", asset, methods=["GET", "HEAD"], include_in_schema=False
    )
    app.add_api_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
