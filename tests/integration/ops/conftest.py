"""Fixtures for the operability tests: metric scraping helpers, and the delivery tests'
loopback webhook receiver (with their fast retry settings)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.delivery.conftest import FAST, receiver
from vidgate.config import Settings

__all__ = ["receiver"]

Labels = dict[str, str]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Loopback allowed (the receiver runs there) and fast webhook retries. The store-gauge
    timer reads once at start and then not for an hour: tests refresh through the object."""
    return settings.model_copy(
        update={"url_allowlist": "127.0.0.1", "extra": dict(FAST), "metrics_refresh_s": 3600.0}
    )


class Scrape:
    """One parsed ``/metrics`` answer: ``value(name, **labels)`` sums the matching samples."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, Labels, float]] = []
        self.families: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            self.samples += [(s.name, dict(s.labels), float(s.value)) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        return sum(v for n, ls, v in self.samples if n == name and _has(ls, labels))

    def series(self, name: str) -> list[Labels]:
        return [ls for n, ls, _ in self.samples if n == name]


def _has(found: Labels, wanted: Iterable[tuple[str, str]] | Labels) -> bool:
    return all(found.get(k) == v for k, v in dict(wanted).items())
