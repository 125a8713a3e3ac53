"""Who is calling: API keys from whichever header a dialect uses, checked against the store.

Keys are looked up by their SHA-256 digest (the store keys it with the server
secret: an index probe on a 256-bit-random secret), then the digest is compared in
constant time. A key stored before migration 0004 could re-key is re-keyed here.
Lookups go through ``vidgate.api.keycache`` (one read per key per second at most).
A missing key, an unknown key and a revoked key all get 401; the message says
which of missing/invalid it was.

Where a key travels is declared by each dialect as a ``KeyForm`` (its header, and
the prefixes its clients put ahead of the vidgate key, like Thalam's ``tl-``); the
dialect's own authentication and the rate limiter both read keys through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vidgate.api.keycache import key_cache
from vidgate.billing.keys import hash_key
from vidgate.domain.job import Principal
from vidgate.errors import AuthenticationFailed, PermissionDenied
from vidgate.store import accounts as account_store
from vidgate.store.engine import Database


@dataclass(frozen=True, slots=True)
class KeyForm:
    """How one dialect's clients send their key.

    ``header`` names the header (lower case); ``authorization`` carries
    ``Bearer <token>``, any other header the token itself. ``prefixes`` are put ahead
    of the vidgate key by the dialect's clients (``tl-vg_test_...``) and removed
    before lookup; ``bare`` says whether the plain vidgate key is accepted too.
    """

    header: str = "authorization"
    prefixes: tuple[str, ...] = ()
    bare: bool = True

    def token(self, headers: Mapping[str, str]) -> str | None:
        """The raw token in this form's header (``headers`` keys in lower case), or None."""
        value = headers.get(self.header)
        if self.header == "authorization":
            return bearer_token(value)
        value = (value or "").strip()
        return value or None

    def secret(self, token: str) -> str | None:
        """The vidgate key behind an accepted prefix (or bare); None in any other form."""
        for prefix in self.prefixes:
            if token.startswith(prefix):
                return token[len(prefix) :]
        return token if self.bare else None


BEARER = KeyForm()  # the native API's form: ``Authorization: Bearer <vidgate key>``


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(db: Database, secret: str | None) -> Principal:
    """The principal for a raw key, or ``AuthenticationFailed``/``PermissionDenied``.

    The store is read through the per-database ``KeyCache`` (at most once a second per key).
    """
    if not secret:
        raise AuthenticationFailed("missing API key: send it as a Bearer token", code="missing_api_key")
    digest = hash_key(secret)
    state = await key_cache(db).state(db, digest)
    if state.principal is None:
        raise AuthenticationFailed("invalid API key")
    if state.legacy_id is not None:
        async with db.transaction() as conn:
            await account_store.upgrade_key(conn, state.legacy_id, digest)
    if state.inactive:
        raise PermissionDenied("this API key is inactive", code="key_inactive")
    return state.principal
