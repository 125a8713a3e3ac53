"""Serving re-hosted media: signed, expiring URLs and streamed HTTP Range responses.

Every dialect hands out URLs made by ``MediaLinks`` (vidgate's own, signed,
stable after the upstream's URL has died), and the native content endpoint uses
``range_response`` too, so a browser ``<video>`` can seek either way.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from vidgate.api.context import services
from vidgate.errors import InvalidRequest, NotFound
from vidgate.media.links import MediaLinks, media_key
from vidgate.media.signing import verify_path
from vidgate.media.storage import Storage
from vidgate.store.jobs import get_job

router = APIRouter(include_in_schema=False)

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$", re.ASCII)
_MAX_DIGITS = 18  # more digits than any stored size has: read as "past the end", never int()ed
CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/jpeg"}


def media_links(request: Request) -> MediaLinks:
    svc = services(request)
    base = (svc.settings.public_url or str(request.base_url)).rstrip("/")
    return MediaLinks(base, svc.signing_secret, svc.settings.signed_url_ttl_s)


def _bounded(digits: str, ceiling: int) -> int:
    """``int(digits)``, capped at ``ceiling``, without converting an absurdly long number."""
    stripped = digits.lstrip("0") or "0"
    return ceiling if len(stripped) > _MAX_DIGITS else min(int(stripped), ceiling)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` -> inclusive (start, end); None for the whole file; error if unsatisfiable.

    Numbers of any length are read with bounds: a start past the end is 416, an end
    past the end is the last byte, a suffix longer than the file is the whole file.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # malformed or multi-range: serve the whole file, as RFC 9110 allows
    first, last = match.group(1), match.group(2)
    if first:
        start = _bounded(first, size)
        end = _bounded(last, size - 1) if last else size - 1
    else:
        start, end = max(0, size - _bounded(last, size)), size - 1
    if start >= size or start > end:
        raise InvalidRequest(
            f"range {header!r} is not satisfiable for {size} bytes", code="range_not_satisfiable"
        )
    return start, end


async def range_response(
    storage: Storage, key: str, *, request: Request, content_type: str, filename: str | None = None
) -> Response:
    size = await storage.size(key)
    if size is None:
        raise NotFound("the media is no longer stored")
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    try:
        span = parse_range(request.headers.get("range"), size)
    except InvalidRequest:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}", **headers})
    start, end = span if span else (0, size - 1)
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=206 if span else 200, headers=headers, media_type=content_type)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in storage.open_range(key, start, end):
            yield chunk

    if span:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return StreamingResponse(body(), status_code=206, headers=headers, media_type=content_type)
    return StreamingResponse(body(), headers=headers, media_type=content_type)


@router.api_route("/media/{job_id}/{name}", methods=["GET", "HEAD"])
async def signed_media(job_id: str, name: str, request: Request, exp: str = "", sig: str = "") -> Response:
    svc = services(request)
    if not verify_path(request.url.path, exp, sig, secret=svc.signing_secret):
        raise NotFound("this media link is invalid or has expired")
    variant = name.rsplit(".", 1)[0]
    async with svc.db.read() as conn:
        job = await get_job(conn, job_id)
    key = media_key(job, variant) if job is not None and job.deleted_at is None else None
    if key is None:
        raise NotFound("this media has been deleted or has expired")
    kind = "thumbnail" if variant == "thumbnail" else "video"
    return await range_response(
        svc.storage, key, request=request, content_type=CONTENT_TYPES[kind], filename=name
    )
