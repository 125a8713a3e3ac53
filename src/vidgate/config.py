"""Settings, from the environment (``VIDGATE_*``) and command-line overrides.

One ``Settings`` object is built at start-up and passed down; nothing else reads
the environment (provider credentials included: see ``provider_settings``).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DRIVERS = {
    "postgresql://": "postgresql+asyncpg://",
    "postgres://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIDGATE_", extra="ignore")

    data_dir: Path = Path("./vidgate-data")
    database_url: str | None = None  # default: sqlite+aiosqlite in data_dir
    storage_url: str = ""  # default: the local folder data_dir/media; s3://bucket/prefix for S3
    public_url: str | None = None  # how the outside world reaches us (signed URLs, callbacks)
    redis_url: str | None = None
    catalog: Path | None = None  # an operator's TOML that adds or overrides models
    config: Path | None = None  # a TOML file with [providers.<name>] tables (see provider_settings)
    secret_key: str | None = None  # signs media URLs; default: generated once in data_dir
    admin_token: str | None = None

    job_timeout_s: int = 600
    simulator_latency_s: float = 4.0
    rate_limit_per_minute: int = 60
    retention_days: int = 7
    signed_url_ttl_s: int = 24 * 3600
    max_body_bytes: int = 25 * 1024 * 1024
    max_output_bytes: int = 2 * 1024 * 1024 * 1024
    upstream_timeout_s: float = 30.0
    apiframe_credit_usd: Decimal = Decimal("0.01")

    worker_concurrency: int = 16
    worker_poll_interval_s: float = 0.5
    lease_s: float = 60.0

    demo_credit_usd: Decimal = Decimal("25")
    log_level: str = "info"
    url_allowlist: str = ""  # comma-separated hosts and CIDRs the SSRF guard lets through

    extra: dict[str, str] = Field(default_factory=dict, exclude=True)

    @field_validator("database_url", mode="before")
    @classmethod
    def _driver(cls, value: object) -> object:
        """``postgresql://`` (and ``postgres://``) mean asyncpg, ``sqlite://`` means aiosqlite:
        the only drivers vidgate ships."""
        if not isinstance(value, str):
            return value
        value = value.strip()
        for plain, full in _DRIVERS.items():
            if value.startswith(plain):
                return full + value[len(plain) :]
        return value or None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vidgate.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def signing_secret(self) -> bytes:
        """The media-URL signing secret: configured, or made once and kept in the data dir."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip().encode()


def provider_settings(
    name: str, env: dict[str, str] | None = None, *, file: Path | None = None
) -> dict[str, str]:
    """One provider's settings: its ``[providers.<name>]`` table in the config file,
    overridden by its ``VIDGATE_<NAME>_*`` variables; keys lower-cased without prefix.

    ``provider_settings("kling")`` -> ``{"api_key": ..., "secret_key": ..., "base_url": ...}``.
    """
    table = config_file(file).get("providers", {}).get(name, {})
    values = {str(k).lower(): str(v) for k, v in table.items() if v != ""}
    source = os.environ if env is None else env
    prefix = f"VIDGATE_{name.upper()}_"
    values.update(
        {
            key[len(prefix) :].lower(): value
            for key, value in source.items()
            if key.startswith(prefix) and value
        }
    )
    return values


def config_file(path: Path | None) -> dict[str, Any]:
    """The parsed TOML config file, or an empty table when none is configured.

    A missing or malformed file stops start-up with a clear message, never a silent default.
    """
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SystemExit(f"cannot read the config file {path}: {exc}") from exc
