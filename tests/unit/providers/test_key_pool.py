"""Key pools: settings split per key, keys taken in turn, refused keys sitting out."""

from __future__ import annotations

from typing import Any

import pytest

from vidgate.worker.breaker import CircuitBreaker
from vidgate.worker.key_pool import KeyPool, PoolKey, key_settings


def test_one_key_is_labelled_by_the_provider() -> None:
    assert key_settings("fal", {"api_key": "k", "base_url": "u"}) == [
        ("fal", {"api_key": "k", "base_url": "u"})
    ]


def test_a_key_list_makes_one_set_of_settings_per_key_paired_by_position() -> None:
    split = key_settings("kling", {"api_keys": "a1, a2", "secret_keys": "s1,s2", "base_url": "u"})
    assert split == [
        ("kling#1", {"api_key": "a1", "secret_key": "s1", "base_url": "u"}),
        ("kling#2", {"api_key": "a2", "secret_key": "s2", "base_url": "u"}),
    ]
    # the list wins over a single key
    assert [s["api_key"] for _, s in key_settings("fal", {"api_key": "x", "api_keys": "a,b"})] == ["a", "b"]


def test_lists_of_different_lengths_stop_start_up_with_the_reason() -> None:
    with pytest.raises(SystemExit, match="the key lists must be the same length"):
        key_settings("kling", {"api_keys": "a1,a2", "secret_keys": "s1"})


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _pool(n: int, clock: _Clock) -> KeyPool:
    adapter: Any = object()
    return KeyPool("fal", [PoolKey(f"fal#{i + 1}", adapter) for i in range(n)], auth_pause_s=60, clock=clock)


def test_keys_are_taken_in_turn_and_a_refused_key_sits_out_while_others_carry_on() -> None:
    clock, breaker = _Clock(), CircuitBreaker(threshold=1)
    pool = _pool(3, clock)
    firsts = [pool.in_turn(breaker)[0][0].label for _ in range(4)]
    assert firsts == ["fal#1", "fal#2", "fal#3", "fal#1"]
    pool.refused(pool.get("fal#2"))
    keys, paused = pool.in_turn(breaker)  # turn of fal#2
    assert [k.label for k in keys] == ["fal#3", "fal#1"] and not paused
    clock.now += 61  # the pause is over: it is tried again
    assert "fal#2" in [k.label for k in pool.in_turn(breaker)[0]]


def test_a_refused_key_is_still_tried_when_no_other_key_can_be() -> None:
    clock, breaker = _Clock(), CircuitBreaker(threshold=1)
    pool = _pool(2, clock)
    pool.refused(pool.get("fal#1"))
    pool.refused(pool.get("fal#2"))
    assert len(pool.in_turn(breaker)[0]) == 2  # the job then fails with the upstream's reason
    pool.accepted(pool.get("fal#1"))
    assert [k.label for k in pool.in_turn(breaker)[0]] == ["fal#1"]


def test_an_open_breaker_pauses_only_its_key() -> None:
    clock, breaker = _Clock(), CircuitBreaker(threshold=1)
    pool = _pool(2, clock)
    breaker.failure("fal#1")
    keys, paused = pool.in_turn(breaker)
    assert [k.label for k in keys] == ["fal#2"] and paused
    assert pool.usable(breaker)
    breaker.failure("fal#2")
    assert pool.in_turn(breaker) == ([], True) and not pool.usable(breaker)


def test_a_job_s_key_is_found_by_label_and_an_unknown_label_means_the_first_key() -> None:
    pool = _pool(2, _Clock())
    assert pool.get("fal#2").label == "fal#2"
    assert pool.get(None).label == "fal#1" and pool.get("fal#9").label == "fal#1"
