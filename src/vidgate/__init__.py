"""vidgate: a self-hosted gateway for AI video generation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vidgate")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
