"""When to look at a running job again: follow the upstream's hints, back off otherwise."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from vidgate.clock import utcnow
from vidgate.domain.job import Job
from vidgate.providers.base import UpstreamStatus

MIN_DELAY_S = 0.5
MAX_DELAY_S = 20.0


def next_poll_delay(status: UpstreamStatus | None, polls: int) -> float:
    """Seconds until the next poll.

    With an ETA we come back at about half of it (bounded), so a long render is
    not hammered and a short one is not overslept; a queue position adds a little
    per job ahead; without hints the delay grows geometrically from 1 s to 20 s.
    """
    backoff = min(MAX_DELAY_S, float(1.4 ** max(0, polls)))
    if status is None:
        return backoff
    if status.eta_s is not None and status.eta_s >= 0:
        return max(MIN_DELAY_S, min(MAX_DELAY_S, status.eta_s / 2, backoff * 2))
    if status.queue_position is not None:
        return max(MIN_DELAY_S, min(MAX_DELAY_S, 1.0 + 0.5 * status.queue_position))
    return backoff


def retry_delay(attempt: int, retry_after_s: float | None = None, *, cap_s: float = 60.0) -> float:
    """Back-off after a transient error (rate limit, 5xx), with jitter; ``Retry-After`` wins."""
    if retry_after_s is not None:
        return max(MIN_DELAY_S, min(cap_s, retry_after_s))
    base = min(cap_s, float(2 ** min(max(attempt, 0), 6)) / 2)
    return max(MIN_DELAY_S, base * random.uniform(0.5, 1.0))


LAST_LOOK_S = 1.0  # a job is looked at once more this long before its deadline


def before_deadline(job: Job, delay_s: float, *, now: datetime | None = None) -> datetime:
    """When to look again: after ``delay_s``, but never past the job's deadline.

    A job whose back-off would carry it past its deadline is looked at once more
    just before it, so that it is polled one last time rather than expired unseen.
    """
    now = now or utcnow()
    wanted = now + timedelta(seconds=delay_s)
    last_look = job.deadline_at - timedelta(seconds=LAST_LOOK_S)
    if wanted < last_look:
        return wanted
    return max(now, last_look) if now < last_look else job.deadline_at
