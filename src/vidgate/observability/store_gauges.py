"""Gauges read from the database on a background timer, served from the last snapshot.

``prometheus_client`` collects synchronously, but the store is async. So the process
that owns these gauges runs ``run(stop, interval_s=...)`` beside its other loops
(``Runtime.start``; every ``VIDGATE_METRICS_REFRESH_S``, 15 s by default), and a
``/metrics`` scrape renders the last snapshot: a scrape never queries the database,
however often it comes. A failed or slow refresh (bounded by ``timeout_s``) logs,
keeps the last snapshot and says so (``vidgate_store_snapshot_ok 0``, and its age
grows); it never breaks a scrape.

The query function is injected by the composition root: this package does not
know the store. Each query it runs must be indexed (no full-table scan per refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
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
    """A collector over the last ``StoreSnapshot``; ``run`` (or ``refresh``) keeps it current."""

    def __init__(self, fetch: Fetch, *, timeout_s: float = 2.0) -> None:
        self._fetch = fetch
        self.timeout_s = timeout_s
        self._snapshot = StoreSnapshot()
        self._taken_at: float | None = None  # monotonic time of the last good snapshot
        self._ok = False
        self._lock = asyncio.Lock()
        self._last_warning: float | None = None
        self.refreshes = 0  # reads tried, good or bad (tests wait on it)

    @property
    def snapshot(self) -> StoreSnapshot:
        return self._snapshot

    @property
    def ok(self) -> bool:
        """The last read succeeded."""
        return self._ok

    async def refresh(self) -> bool:
        """Read the store now, once at a time (never raises); True when the read succeeded."""
        async with self._lock:
            tried_at = time.monotonic()
            try:
                async with asyncio.timeout(self.timeout_s):
                    snapshot = await self._fetch()
            except Exception:
                self._ok = False
                if self._last_warning is None or tried_at - self._last_warning > 60:
                    self._last_warning = tried_at
                    log.warning("metrics: the store snapshot failed; serving the last one", exc_info=True)
                return False
            finally:
                self.refreshes += 1
            self._snapshot, self._taken_at, self._ok = snapshot, time.monotonic(), True
            return True

    async def run(self, stop: asyncio.Event, *, interval_s: float) -> None:
        """Refresh now, then every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

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
