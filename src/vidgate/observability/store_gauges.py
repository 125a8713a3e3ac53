"""Gauges read from the database at scrape time, from a cached snapshot.

``prometheus_client`` collects synchronously, but the store is async: so the
``/metrics`` handler first awaits ``StoreGauges.refresh()`` (which queries at most
once per ``max_age_s``, and once at a time however many scrapes arrive together),
then renders, and ``collect()`` reads the cached snapshot without touching the
database. A failed refresh keeps the last snapshot and says so
(``vidgate_store_snapshot_ok 0``, and its age grows).

The query function is injected by the composition root: this package does not
know the store. Each query it runs must be indexed (no full-table scan per scrape).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreSnapshot:
    """What the store looks like now; every count covers ACTIVE (non-terminal) jobs only."""

    active_jobs: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (state, provider, model)
    due_jobs: int = 0
    oldest_due_age_s: float = 0.0
    outbox_events_pending: int = 0  # events not yet fanned out into deliveries
    deliveries_pending: int = 0  # deliveries waiting for their (next) attempt


Fetch = Callable[[], Awaitable[StoreSnapshot]]


class StoreGauges(Collector):
    """A collector over the last ``StoreSnapshot``; ``refresh()`` before each render."""

    def __init__(self, fetch: Fetch, *, max_age_s: float = 5.0, timeout_s: float = 2.0) -> None:
        self._fetch = fetch
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self._snapshot = StoreSnapshot()
        self._taken_at: float | None = None  # monotonic time of the last good snapshot
        self._ok = False
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()
        self._last_warning = 0.0

    @property
    def snapshot(self) -> StoreSnapshot:
        return self._snapshot

    async def refresh(self, *, force: bool = False) -> None:
        """Query the store if the snapshot is older than ``max_age_s`` (never raises)."""
        if not force and self._fresh():
            return
        async with self._lock:
            if not force and self._fresh():  # another scrape refreshed it while we waited
                return
            self._tried_at = time.monotonic()
            try:
                async with asyncio.timeout(self.timeout_s):
                    snapshot = await self._fetch()
            except Exception:
                self._ok = False
                if self._tried_at - self._last_warning > 60:
                    self._last_warning = self._tried_at
                    log.warning("metrics: the store snapshot failed; serving the last one", exc_info=True)
                return
            self._snapshot, self._taken_at, self._ok = snapshot, time.monotonic(), True

    def _fresh(self) -> bool:
        return self._tried_at is not None and time.monotonic() - self._tried_at < self.max_age_s

    def describe(self) -> Iterable[Metric]:
        return self._families(StoreSnapshot(), ok=False, age=0.0)

    def collect(self) -> Iterable[Metric]:
        age = time.monotonic() - self._taken_at if self._taken_at is not None else -1.0
        return self._families(self._snapshot, ok=self._ok, age=age)

    @staticmethod
    def _families(snap: StoreSnapshot, *, ok: bool, age: float) -> list[Metric]:
        active = GaugeMetricFamily(
            "vidgate_jobs_active",
            "Jobs not yet finished, by state, provider and model (the same in every process).",
            labels=["state", "provider", "model"],
        )
        for (state, provider, model), count in sorted(snap.active_jobs.items()):
            active.add_metric([state, provider, model], count)
        return [
            active,
            GaugeMetricFamily("vidgate_jobs_due", "Active jobs whose next step is due now.", snap.due_jobs),
            GaugeMetricFamily(
                "vidgate_jobs_oldest_due_age_seconds",
                "How long the oldest due job has been waiting for a worker (0 when none is due).",
                snap.oldest_due_age_s,
            ),
            GaugeMetricFamily(
                "vidgate_outbox_events_pending",
                "Outbox events not yet turned into webhook deliveries.",
                snap.outbox_events_pending,
            ),
            GaugeMetricFamily(
                "vidgate_webhook_deliveries_pending",
                "Webhook deliveries waiting for their first or next attempt.",
                snap.deliveries_pending,
            ),
            GaugeMetricFamily(
                "vidgate_store_snapshot_ok",
                "1 when the last read of the store gauges above succeeded.",
                1 if ok else 0,
            ),
            GaugeMetricFamily(
                "vidgate_store_snapshot_age_seconds",
                "Age of the store gauges above (-1: never read).",
                age,
            ),
        ]
