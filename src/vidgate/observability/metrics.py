"""The process's Prometheus metrics: one ``Metrics`` per process, on its own registry.

No global registry: tests build several apps in one process, and each must count
only its own. Every method is a cheap, synchronous update that never raises for an
unexpected label value (an operator's dashboard is no reason to fail a job); label
sets are bounded (route templates, provider and model names from the catalog, a
handful of states and outcomes), never ids.

Counters and histograms are per process (sum them across replicas); the gauges read
from the database at scrape time (``vidgate_jobs_*``, ``vidgate_outbox_*``,
``vidgate_webhook_deliveries_pending``) describe the shared store, so every process
reports the same value (use ``max``, not ``sum``). See ``store_gauges``.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    Summary,
    disable_created_metrics,
)
from prometheus_client.registry import Collector

from vidgate.observability.exposition import TextWriter

log = logging.getLogger(__name__)

# The ``*_created`` timestamp series double the exposition for no use on a dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Latency buckets, in seconds: HTTP handlers answer in milliseconds, upstream calls
# take up to tens of seconds, jobs minutes, re-hosting a large file a while.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)
REHOST_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

UPSTREAM_OPERATIONS = frozenset({"submit", "poll", "cancel", "find", "fetch"})
UPSTREAM_OUTCOMES = frozenset(
    {"ok", "rejected", "rate_limited", "unavailable", "timeout", "protocol_error", "unknown", "auth"}
)
BREAKER_STATES = ("closed", "open", "half_open")
LEASE_EVENTS = frozenset({"leased", "renewed", "released", "lapsed"})
MONEY_KINDS = frozenset({"held", "captured", "released"})
MONEY_MODES = frozenset({"test", "live"})
WEBHOOK_OUTCOMES = frozenset({"succeeded", "retrying", "failed", "skipped", "canceled"})

NONE = "none"  # the label value for "no provider yet" and the like
OTHER = "other"  # an unexpected label value, kept bounded


def _one_of(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


def _label(value: str | None) -> str:
    return value if value else NONE


class Metrics:
    """Typed counters for one process; ``render()`` is the ``/metrics`` body."""

    def __init__(self, *, role: str = "all", version: str = "", process_stats: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._writer = TextWriter()
        r = self.registry
        if process_stats:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        info = Gauge("vidgate_info", "This process: version and role.", ["version", "role"], registry=r)
        info.labels(version, role).set(1)
        self._http_requests = Counter(
            "vidgate_http_requests",
            "HTTP requests answered, by dialect, route template, method and status.",
            ["dialect", "route", "method", "status"],
            registry=r,
        )
        # Latency: a histogram (percentiles) per dialect, and per route its sum and count only
        # (the mean): buckets x routes would make the exposition, and each scrape, 5x larger.
        self._http_latency = Histogram(
            "vidgate_http_request_duration_seconds",
            "Time to answer an HTTP request (until the last body byte is sent), by dialect.",
            ["dialect"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self._http_route_latency = Summary(
            "vidgate_http_route_duration_seconds",
            "Time to answer an HTTP request, by route template and method (sum and count: the mean).",
            ["dialect", "route", "method"],
            registry=r,
        )
        self._upstream_calls = Counter(
            "vidgate_upstream_calls",
            "Calls to upstream providers, by operation and outcome.",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self._upstream_latency = Histogram(
            "vidgate_upstream_call_duration_seconds",
            "Time an upstream call took, by provider and operation.",
            ["provider", "operation"],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self._breaker = Gauge(
            "vidgate_breaker_state",
            "Circuit breaker state per provider route: 1 for the current state, 0 for the others.",
            ["provider", "state"],
            registry=r,
        )
        self._leases = Counter(
            "vidgate_job_lease_events",
            "Job lease events in this worker: leased, renewed, released, lapsed.",
            ["kind"],
            registry=r,
        )
        self._jobs_finished = Counter(
            "vidgate_jobs_finished",
            "Jobs that reached a terminal state (succeeded, failed, expired, canceled).",
            ["provider", "model", "state"],
            registry=r,
        )
        self._job_duration = Histogram(
            "vidgate_job_duration_seconds",
            "Time from acceptance to the terminal state.",
            ["provider", "state"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self._money = Counter(
            "vidgate_money_micro_usd",
            "Money moved on job holds, in micro-USD, by mode (test, live) and kind "
            "(held, captured, released).",
            ["mode", "kind"],
            registry=r,
        )
        self._rehosted_bytes = Counter(
            "vidgate_rehosted_bytes", "Bytes of upstream output copied into our storage.", registry=r
        )
        self._rehost_latency = Histogram(
            "vidgate_rehost_duration_seconds",
            "Time to copy one job's output into our storage.",
            buckets=REHOST_BUCKETS,
            registry=r,
        )
        self._duplicates = Counter(
            "vidgate_upstream_possible_duplicates",
            "Submissions sent again after an unknown outcome (the upstream may run the job twice).",
            ["provider"],
            registry=r,
        )
        self._unknown_submits = Counter(
            "vidgate_upstream_unknown_submit_outcomes",
            "Submissions whose outcome could not be known (connection lost after sending).",
            ["provider"],
            registry=r,
        )
        self._webhooks = Counter(
            "vidgate_webhook_deliveries",
            "Webhook delivery attempts by outcome: succeeded, retrying (failed, will be retried), "
            "failed (gave up), skipped, canceled.",
            ["outcome"],
            registry=r,
        )
        # Known series exist from the start (at 0), so a rate() sees their first increase.
        for mode in MONEY_MODES:
            for kind in MONEY_KINDS:
                self._money.labels(mode, kind)
        for outcome in WEBHOOK_OUTCOMES:
            self._webhooks.labels(outcome)
        for event in LEASE_EVENTS:
            self._leases.labels(event)

    # ------------------------------------------------------------------ updates

    def http_request(self, dialect: str, route: str, method: str, status: int, seconds: float) -> None:
        self._http_requests.labels(dialect, route, method, str(status)).inc()
        self._http_latency.labels(dialect).observe(max(0.0, seconds))
        self._http_route_latency.labels(dialect, route, method).observe(max(0.0, seconds))

    def upstream_call(self, provider: str, operation: str, outcome: str, seconds: float) -> None:
        """operation: submit|poll|cancel|find|fetch; outcome: ok|rejected|rate_limited|
        unavailable|timeout|protocol_error|unknown|auth."""
        operation = _one_of(operation, UPSTREAM_OPERATIONS)
        self._upstream_calls.labels(provider, operation, _one_of(outcome, UPSTREAM_OUTCOMES)).inc()
        self._upstream_latency.labels(provider, operation).observe(max(0.0, seconds))

    def breaker_state(self, provider: str, state: str) -> None:
        """closed|open|half_open: sets the current state's series to 1 and the others to 0."""
        if state not in BREAKER_STATES:
            log.debug("unknown breaker state %r for %s", state, provider)
            return
        for candidate in BREAKER_STATES:
            self._breaker.labels(provider, candidate).set(1 if candidate == state else 0)

    def lease_event(self, kind: str) -> None:
        """leased|renewed|released|lapsed."""
        self._leases.labels(_one_of(kind, LEASE_EVENTS)).inc()

    def job_finished(self, provider: str | None, model: str, state: str, seconds: float) -> None:
        self._jobs_finished.labels(_label(provider), model, state).inc()
        self._job_duration.labels(_label(provider), state).observe(max(0.0, seconds))

    def money(self, mode: str, kind: str, micros: int) -> None:
        """kind: held|captured|released; mode: test|live. ``micros`` is never negative."""
        if micros < 0:
            log.warning("negative money metric ignored: %s %s %d", mode, kind, micros)
            return
        self._money.labels(_one_of(mode, MONEY_MODES), _one_of(kind, MONEY_KINDS)).inc(micros)

    def rehosted(self, nbytes: int, seconds: float) -> None:
        self._rehosted_bytes.inc(max(0, nbytes))
        self._rehost_latency.observe(max(0.0, seconds))

    def possible_duplicate(self, provider: str) -> None:
        self._duplicates.labels(provider).inc()

    def unknown_submit_outcome(self, provider: str) -> None:
        self._unknown_submits.labels(provider).inc()

    def webhook_delivery(self, outcome: str) -> None:
        """succeeded|retrying|failed|skipped|canceled."""
        self._webhooks.labels(_one_of(outcome, WEBHOOK_OUTCOMES)).inc()

    # ------------------------------------------------------------------ output

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric of this process."""
        return self._writer.render(self.registry)
