"""When to look at a running job again: follow the upstream's hints, back off otherwise."""

from __future__ import annotations

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


def retry_delay(attempt: int, retry_after_s: float | None = None) -> float:
    """Back-off after a transient error (rate limit, 5xx) while polling or fetching."""
    if retry_after_s is not None:
        return max(MIN_DELAY_S, min(60.0, retry_after_s))
    return min(60.0, float(2 ** min(attempt, 6)))
