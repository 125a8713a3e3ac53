"""Secrets at rest: what the database holds is useless without the server secret.

One server secret (``VIDGATE_SECRET_KEY``, or the ``secret.key`` generated once in
the data dir) gives, through HKDF-SHA256 with a distinct label each:

- the **API-key hash key**: a key is stored as ``HMAC-SHA256(k, sha256(key))``. The
  inner SHA-256 digest is what Apiframe's wire format signs webhooks with (its seed
  says the signing key is the SHA-256 digest of the raw API key); keying the stored
  value means a copied database yields neither a lookup hash nor that signing key;
- the **sealing key**: webhook signing secrets (and each key's signing digest) are
  stored as ``enc:v1:<Fernet token>`` (AES-128-CBC + HMAC-SHA256, from
  ``cryptography``).

Changing the server secret makes every stored key and sealed secret unusable: keep
it with the database's backups, and apart from them.

``Keyring.open`` reads a value without the ``enc:v1:`` prefix as a legacy plaintext
secret (databases from before migration 0004 that were migrated without a keyring).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vidgate.config import Settings

SEALED_PREFIX = "enc:v1:"
_KEY_HASH_LABEL = b"vidgate api-key hash v1"
_SEALING_LABEL = b"vidgate secrets at rest v1"


class SecretUnreadable(RuntimeError):
    """A sealed value does not open with this server secret (was it changed?)."""


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret)


class Keyring:
    """Keys derived from the server secret: ``key_hash`` for API keys, ``seal``/``open`` for secrets."""

    def __init__(self, server_secret: bytes) -> None:
        if not server_secret:
            raise ValueError("the server secret is empty")
        self._hash_key = _derive(server_secret, _KEY_HASH_LABEL)
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(server_secret, _SEALING_LABEL)))

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        return cls(settings.signing_secret())

    def key_hash(self, digest_hex: str) -> str:
        """The stored form of an API key, from its SHA-256 digest (hex): 64 hex chars."""
        try:
            digest = bytes.fromhex(digest_hex)
        except ValueError:
            digest = digest_hex.encode("utf-8", "surrogatepass")
        return hmac.new(self._hash_key, digest, hashlib.sha256).hexdigest()

    def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of a sealed value; a legacy unsealed value is returned as it is."""
        if not is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretUnreadable(
                "a stored secret does not open with this server's secret key "
                "(was VIDGATE_SECRET_KEY or <data-dir>/secret.key changed?)"
            ) from None


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)
