"""Signed, expiring media URLs: ``/media/<key>?exp=<unix seconds>&sig=<hmac>``.

Whoever holds the link may fetch the file until ``exp``; nobody can change the path or
stretch the expiry without the server's secret. The signature is HMAC-SHA256 over the
path and the expiry, joined by a newline (which a URL path cannot contain, so no two
(path, exp) pairs sign the same bytes), written in URL-safe base64 without padding.

Sign the path exactly as it will appear in the request (percent-encoded), and verify
the path the request arrived on: no normalisation happens here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

__all__ = ["sign_path", "verify_path"]

_MAX_EXP_DIGITS = 12  # far beyond any real expiry; bounds the int() parse


def sign_path(path: str, *, expires_at: int, secret: bytes) -> str:
    """The query string ``exp=...&sig=...`` that makes ``path`` fetchable until ``expires_at``."""
    if not secret:
        raise ValueError("the signing secret must not be empty")
    if expires_at < 0:
        raise ValueError("expires_at must be a unix time in seconds")
    exp = str(int(expires_at))
    return urlencode({"exp": exp, "sig": _signature(path, exp, secret)})


def verify_path(path: str, exp: str, sig: str, *, secret: bytes, now: float | None = None) -> bool:
    """True when ``sig`` signs ``path`` and ``exp`` with ``secret`` and ``exp`` is not past.

    Never raises: a malformed, tampered or expired link is simply ``False``.
    """
    try:
        if not secret or not exp.isascii() or not exp.isdigit() or len(exp) > _MAX_EXP_DIGITS:
            return False
        current = time.time() if now is None else now
        if int(exp) <= current:
            return False
        expected = _signature(path, exp, secret).encode("ascii")
        return hmac.compare_digest(expected, sig.encode("utf-8", "surrogatepass"))
    except (AttributeError, TypeError, ValueError, UnicodeError):
        return False


def _signature(path: str, exp: str, secret: bytes) -> str:
    message = f"{path}\n{exp}".encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
