"""Operability: Prometheus metrics, health and readiness routes, the access layer, log formats.

This package sits low: it imports only ``vidgate.domain`` and ``vidgate.config``.
What it needs from the store (readiness checks, the gauges read at scrape time) is
injected by the composition root (``vidgate.runtime.ops``).

For the rest of vidgate, two things:

- ``Metrics``: one per process (``runtime.ops.metrics``); call its typed methods
  (``job_finished``, ``upstream_call``, ``money``, ...).
"""

from vidgate.observability.metrics import Metrics

__all__ = ["Metrics"]
