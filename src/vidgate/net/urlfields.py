"""Every URL in a request that anything downstream might fetch, for the URL guard.

``user_urls(req)`` gives ``(param, url)`` for the image inputs, the webhook, and every
URL-looking string anywhere in ``options`` and ``provider_options`` (Thalam
``video_url``, Venice ``audio_url``, Apiframe ``reference_video_urls``, a Kyma
``extra`` that names an image...). A dialect does not have to list its URL fields:
whatever it passes on is walked. A string looks like a URL when its key says so
(``*_url``, ``*_urls``, ``*_uri``), when it contains ``://``, or when it starts with a
scheme that fetches (``data:``, ``file:``, ``ftp:``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from vidgate.domain.request import GenerationRequest
from vidgate.errors import InvalidRequest

MAX_URLS = 32  # each one may cost a DNS lookup at submit
_FETCHING_SCHEMES = frozenset(
    [
        "http",
        "https",
        "ftp",
        "ftps",
        "sftp",
        "tftp",
        "file",
        "data",
        "gopher",
        "dict",
        "ldap",
        "ldaps",
        "ws",
        "wss",
        "s3",
        "gs",
        "jar",
        "netdoc",
        "smb",
    ]
)
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")
_URL_KEY = re.compile(r"(^|_)(url|urls|uri|uris)$", re.IGNORECASE)


def looks_like_url(key: str, value: str) -> bool:
    if _URL_KEY.search(key) or "://" in value:
        return True
    scheme = _SCHEME.match(value)
    return scheme is not None and scheme.group(1).lower() in _FETCHING_SCHEMES


def _walk(node: Any, path: str, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        if looks_like_url(key, node):
            yield path, node
    elif isinstance(node, Mapping):
        for child_key, child in node.items():
            name = str(child_key)
            yield from _walk(child, f"{path}.{name}" if path else name, name)
    elif isinstance(node, list | tuple):
        for index, child in enumerate(node):
            yield from _walk(child, f"{path}[{index}]", key)


def user_urls(req: GenerationRequest) -> list[tuple[str, str]]:
    """``(param, url)`` for every URL in ``req``; ``InvalidRequest`` past ``MAX_URLS``."""
    found = [("image_url", image.url) for image in req.images]
    if req.webhook_url:
        found.append(("webhook_url", req.webhook_url))
    found += _walk(req.options, "", "")
    found += _walk(req.provider_options, "", "")
    if len(found) > MAX_URLS:
        raise InvalidRequest(f"a request may carry at most {MAX_URLS} URLs", code="too_many_urls")
    return found
