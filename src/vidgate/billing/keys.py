"""API key material: random secrets, shown once, known afterwards by their digest.

A key looks like ``vg_test_<43 url-safe chars>`` (or ``vg_live_...``): 256 bits of
randomness, so a plain SHA-256 digest identifies it one-way (no password stretching
needed). The digest is never stored as such: it is also Apiframe's webhook signing
key, so the store keeps it keyed with the server secret (``vidgate.keyring``) and
lookup by that keyed hash is an index probe. Where a key travels, and what a client
may put ahead of it, is the API edge's business (``vidgate.api.auth.KeyForm``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

KEY_PREFIXES = {"live": "vg_live_", "test": "vg_test_"}


def generate_key(mode: Literal["live", "test"]) -> str:
    return KEY_PREFIXES[mode] + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    """The key's SHA-256 digest (hex): what the store looks a key up by, keyed."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(secret: str) -> str:
    """What listings show of a key: its kind and first characters."""
    return secret[:12]


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode(), b.encode())


def looks_like_key(secret: str) -> bool:
    return any(secret.startswith(p) for p in KEY_PREFIXES.values()) and len(secret) < 200
