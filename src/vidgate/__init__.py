"""vidgate: a self-hosted gateway for AI video generation."""

__version__ = "0.1.0"
