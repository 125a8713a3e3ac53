"""Process roles: which parts one process runs.

- ``ALL`` (``vidgate serve``): the HTTP API and every background loop, one process.
- ``API`` (``vidgate serve --no-worker``): the HTTP API only; run as many as you like.
- ``WORKER`` (``vidgate worker``): the job worker, the webhook sender and the media
  purger, with no HTTP API; run as many as you like.

Every background loop belongs to the worker side and is safe in N processes at
once: jobs and webhook deliveries are leased rows, and purging is idempotent. So a
deployment of API replicas plus worker replicas delivers webhooks exactly as the
all-in-one process does.
"""

from __future__ import annotations

import enum


class Role(enum.Enum):
    ALL = "all"
    API = "api"
    WORKER = "worker"

    @property
    def serves_http(self) -> bool:
        return self is not Role.WORKER

    @property
    def runs_loops(self) -> bool:
        """The worker, the webhook sender and the media purger."""
        return self is not Role.API
