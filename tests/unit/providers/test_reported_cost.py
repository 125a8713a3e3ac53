"""Adapters read what an upstream says a job cost from its answer; a usage field that is
missing or not a number never breaks the job."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from vidgate.domain.job import ReportedCost
from vidgate.providers import ark, dashscope, replicate, usage, xai


def test_xai_states_the_exact_cost_in_ticks_of_a_ten_billionth_of_a_dollar() -> None:
    done = {
        "status": "done",
        "video": {"url": "https://x/v.mp4", "duration": 8},
        "usage": {"cost_in_usd_ticks": 4_000_000_000},
    }
    status = xai.status_of(done)
    assert status.state == "succeeded" and status.reported_cost == ReportedCost(micros=400_000)


def test_ark_reports_the_tokens_it_billed() -> None:
    task = {
        "id": "cgt-1",
        "status": "succeeded",
        "content": {"video_url": "https://ark/v.mp4"},
        "usage": {"completion_tokens": 246840, "total_tokens": 246840},
    }
    assert ark.status_of(task).reported_cost == ReportedCost(units=Decimal(246840), unit_name="tokens")


def test_dashscope_reports_the_seconds_it_billed() -> None:
    answer = {
        "output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "https://d/v.mp4"},
        "usage": {"video_duration": 5, "video_count": 1},
    }
    assert dashscope.status_of(answer).reported_cost == ReportedCost(units=Decimal(5), unit_name="seconds")


def test_replicate_reports_gpu_time_on_success_and_failure() -> None:
    done = {"id": "p", "status": "succeeded", "output": "https://r/v.mp4", "metrics": {"predict_time": 41.2}}
    failed = {"id": "p", "status": "failed", "error": "CUDA out of memory", "metrics": {"predict_time": 3.5}}
    assert replicate.prediction_status(done).reported_cost == ReportedCost(
        units=Decimal("41.2"), unit_name="predict-seconds"
    )
    assert replicate.prediction_status(failed).reported_cost == ReportedCost(
        units=Decimal("3.5"), unit_name="predict-seconds"
    )


@pytest.mark.parametrize("value", [None, "lots", -5, True, float("nan"), {"usd": 1}])
def test_a_usage_figure_that_is_not_a_plain_number_is_ignored(value: Any) -> None:
    assert usage.usd_ticks(value) is None
    assert usage.units(value, "tokens") is None
    done = {"status": "done", "video": {"url": "https://x/v.mp4"}, "usage": {"cost_in_usd_ticks": value}}
    assert xai.status_of(done).reported_cost is None
