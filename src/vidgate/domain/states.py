"""The job state machine: the one place that says which state may follow which.

``queued -> submitting -> running -> fetching -> succeeded``; from any state that
is not terminal, ``failed``, ``expired`` or ``canceled``. ``submitting`` may fall
back to ``queued`` (a retryable failure at submit waits for another try), and
``running`` may return to ``running`` (progress). The store enforces this table in
SQL: an update names the states it may start from, so a stale writer changes nothing.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    FETCHING = "fetching"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELED})
ACTIVE = frozenset(JobStatus) - TERMINAL

_FORWARD: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.SUBMITTING}),
    JobStatus.SUBMITTING: frozenset({JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FETCHING}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.FETCHING}),
    JobStatus.FETCHING: frozenset({JobStatus.SUCCEEDED}),
}

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    state: _FORWARD.get(state, frozenset())
    | (
        frozenset({JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELED})
        if not state.terminal
        else frozenset()
    )
    for state in JobStatus
}


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every state from which ``target`` may be entered."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


def can_move(source: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[source]
