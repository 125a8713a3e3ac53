"""The retry schedule: exponential, jittered, capped, and at least 24 hours long by default."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from vidgate.config import Settings
from vidgate.webhooks.config import DAY_S, DeliveryConfig, RetryPolicy


def test_delays_grow_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_s=10, factor=2, cap_s=1000, jitter=0.25)
    rng = random.Random(7)
    for attempts, nominal in [
        (1, 10),
        (2, 20),
        (3, 40),
        (4, 80),
        (7, 640),
        (8, 1000),
        (60, 1000),
        (500, 1000),
    ]:
        delay = policy.delay_s(attempts, rng=rng)
        assert nominal * 0.75 <= delay <= nominal


def test_default_schedule_keeps_trying_for_at_least_a_day() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    start = now = datetime(2026, 1, 1, tzinfo=UTC)
    attempts = 1
    while (
        next_at := policy.next_attempt(attempts=attempts, window_started_at=start, now=now, rng=rng)
    ) is not None:
        now = next_at
        attempts += 1
    assert (now - start).total_seconds() >= DAY_S
    assert 10 < attempts < 60  # a reasonable number of tries


def test_gives_up_once_the_window_has_passed() -> None:
    policy = RetryPolicy(max_age_s=60)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert (
        policy.next_attempt(attempts=3, window_started_at=start, now=start + timedelta(seconds=59))
        is not None
    )
    assert policy.next_attempt(attempts=3, window_started_at=start, now=start + timedelta(seconds=60)) is None


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_s=10, cap_s=1)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.0)


def test_settings_extra_overrides() -> None:
    config = DeliveryConfig.from_settings(
        Settings(
            extra={"webhook_retry_base_s": "0.05", "webhook_retry_cap_s": "0.2", "webhook_interval_s": "0.1"}
        )
    )
    assert config.retry.base_s == 0.05 and config.retry.cap_s == 0.2 and config.interval_s == 0.1
    assert DeliveryConfig.from_settings(Settings()) == DeliveryConfig()
    assert DeliveryConfig().lease_s > DeliveryConfig().attempt_timeout_s * DeliveryConfig().claim_batch
