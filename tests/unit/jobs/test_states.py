from __future__ import annotations

import itertools

import pytest

from vidgate.domain.states import ACTIVE, TERMINAL, TRANSITIONS, JobStatus, can_move, sources_of


def test_happy_path_is_allowed() -> None:
    path = [
        JobStatus.QUEUED,
        JobStatus.SUBMITTING,
        JobStatus.RUNNING,
        JobStatus.FETCHING,
        JobStatus.SUCCEEDED,
    ]
    for source, target in itertools.pairwise(path):
        assert can_move(source, target)


@pytest.mark.parametrize("end", [JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELED])
def test_every_active_state_can_end(end: JobStatus) -> None:
    for state in ACTIVE:
        assert can_move(state, end)


def test_terminal_states_are_final() -> None:
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        assert state.terminal


def test_no_skipping_the_fetch() -> None:
    assert not can_move(JobStatus.RUNNING, JobStatus.SUCCEEDED)
    assert not can_move(JobStatus.QUEUED, JobStatus.SUCCEEDED)
    assert sources_of(JobStatus.SUCCEEDED) == {JobStatus.FETCHING}
