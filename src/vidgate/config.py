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
from typing import Any, Literal

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
    secret_key: str | None = None  # the server secret: media URLs, key hashes, sealed secrets
    admin_token: str | None = None

    job_timeout_s: int = 600
    simulator_latency_s: float = 4.0
    rate_limit_per_minute: int = 60
    retention_days: int = 7
    signed_url_ttl_s: int = 24 * 3600
    max_body_bytes: int = 25 * 1024 * 1024
    max_json_depth: int = 64  # nesting levels of any JSON body or multipart JSON field
    body_idle_timeout_s: float = 30.0  # a request body that stalls this long gets 408
    body_timeout_s: float = 300.0  # and one that takes longer than this in all
    max_output_bytes: int = 2 * 1024 * 1024 * 1024
    upstream_timeout_s: float = 30.0  # polls, cancels, look-ups
    upstream_submit_timeout_s: float = 120.0  # the call that creates an upstream job
    dialect_ports: str = ""  # "apiframe=8003,thalam=8001": dialects served at the root of their own port
    dialect_hosts: str = ""  # "api.example.com=apiframe": dialects served at the root of a host name

    worker_concurrency: int = 16
    worker_poll_interval_s: float = 0.5
    lease_s: float = 15.0  # renewed while a step runs; a dead worker's jobs return after this

    demo_credit_usd: Decimal = Decimal("25")
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    metrics_host: str = "127.0.0.1"  # where `vidgate worker --metrics-port` listens
    metrics_cache_s: float = 5.0  # /metrics reads the store gauges at most this often
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

    def ensure_data_dir(self) -> Path:
        """The data dir, created if needed and kept readable by its owner only (0700).

        It holds the database, the generated ``secret.key``, the demo key and media.
        """
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.data_dir.stat().st_mode & 0o077:
            self.data_dir.chmod(0o700)
        return self.data_dir

    def signing_secret(self) -> bytes:
        """The server secret: configured, or made once and kept in the data dir (0600).

        It signs media URLs and, through ``vidgate.keyring``, keys API-key hashes and
        seals webhook secrets at rest.
        """
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.ensure_data_dir()
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
    A key pool is ``api_keys`` (``VIDGATE_FAL_API_KEYS=k1,k2``; see ``worker.key_pool``).
    """
    table = config_file(file).get("providers", {}).get(name, {})
    values = {str(k).lower(): _setting_text(v) for k, v in table.items() if v not in ("", [])}
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


def _setting_text(value: object) -> str:
    """A config-file value as the environment would spell it: lists comma-separated
    (``api_keys = ["k1", "k2"]`` is ``VIDGATE_<NAME>_API_KEYS=k1,k2``)."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


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
