"""Opening the storage backend a configuration URL names: a local folder or S3.

An empty URL means ``<data dir>/media``; a plain path or ``file://`` URL a local
folder (relative paths under the data dir); ``s3://bucket/prefix?endpoint=...`` an
S3-compatible bucket. Kept apart from ``storage`` so that the contract and the
local backend import nothing of S3.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from vidgate.media.s3 import S3Storage
from vidgate.media.storage import LocalStorage, Storage


def storage_from_url(url: str, *, data_dir: Path) -> Storage:
    """The backend a configuration URL names (see the module docstring)."""
    url = url.strip()
    if not url:
        return LocalStorage(Path(data_dir) / "media")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        return _s3_from_url(url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URLs must name a local path, got host {parts.netloc!r}")
        return LocalStorage(_under(Path(unquote(parts.path)), data_dir))
    if "://" in url:
        raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (use a path or s3://)")
    return LocalStorage(_under(Path(url).expanduser(), data_dir))


def _under(path: Path, data_dir: Path) -> Path:
    return path if path.is_absolute() else Path(data_dir) / path


def _s3_from_url(url: str) -> S3Storage:
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError("an s3:// URL must name a bucket: s3://bucket/prefix")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    known = {"endpoint", "region", "access_key_id", "secret_access_key", "session_token"}
    unknown = set(query) - known
    if unknown:
        raise ValueError(f"unknown s3 URL parameter(s): {', '.join(sorted(unknown))}")
    return S3Storage(
        parts.netloc,
        prefix=unquote(parts.path).strip("/"),
        endpoint=query.get("endpoint"),
        region=query.get("region"),
        access_key_id=query.get("access_key_id"),
        secret_access_key=query.get("secret_access_key"),
        session_token=query.get("session_token"),
    )
