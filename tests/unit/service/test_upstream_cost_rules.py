"""Which upstream cost counts when a job ends: what the upstream made or billed counts even
when the gateway job fails (a loss, never nothing); a job the upstream itself failed costs
nothing unless the route says the upstream bills failures; a stated cost wins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from vidgate.catalog.models import ModelSpec, PriceRule, RouteSpec
from vidgate.domain.job import Job, ReportedCost
from vidgate.domain.request import GenerationRequest
from vidgate.domain.states import JobStatus
from vidgate.service import costs

NOW = datetime(2026, 11, 26, tzinfo=UTC)
ESTIMATE = 560_000


def _spec(*, bills_failures: bool = False) -> ModelSpec:
    return ModelSpec(
        id="m",
        name="m",
        namespace="native",
        label="M",
        vendor="V",
        durations=(5,),
        default_duration=5,
        price=PriceRule(rule="per_second", amount=Decimal("0.2")),
        routes=(
            RouteSpec(
                provider="kling",
                model="k",
                cost=PriceRule(
                    rule="per_second",
                    amount=Decimal("0.112"),
                    source="inferred",
                    bills_failures=bills_failures,
                ),
            ),
            RouteSpec(
                provider="runway",
                model="r",
                cost=PriceRule(
                    rule="per_second",
                    amount=Decimal("5"),
                    unit="credit",
                    credit_usd=Decimal("0.01"),
                    source="published",
                ),
            ),
        ),
    )


def _job(status: JobStatus, *, provider: str = "kling", model: str = "k", accepted: bool = True) -> Job:
    return Job(
        id="vid_1",
        account_id="acct",
        key_id="key",
        mode="live",
        dialect="native",
        model="m",
        status=status,
        progress=0,
        request=GenerationRequest(model="m", prompt="p", duration_s=5),
        metadata={},
        estimated_micros=1_000_000,
        held_micros=1_000_000,
        charged_micros=None,
        created_at=NOW,
        updated_at=NOW,
        completed_at=None,
        deadline_at=NOW,
        provider=provider if accepted else None,
        upstream_model=model if accepted else None,
        upstream_id="up-1" if accepted else None,
        upstream_cost_estimate_micros=ESTIMATE if accepted else None,
        upstream_cost_source="inferred" if accepted else None,
    )


@pytest.mark.parametrize(
    ("before", "target", "counted"),
    [
        (JobStatus.FETCHING, JobStatus.SUCCEEDED, True),  # sold
        (JobStatus.FETCHING, JobStatus.FAILED, True),  # made upstream, refused here: a loss
        (JobStatus.FETCHING, JobStatus.EXPIRED, True),
        (JobStatus.RUNNING, JobStatus.EXPIRED, True),  # ended here while the upstream worked on it
        (JobStatus.RUNNING, JobStatus.CANCELED, True),
        (JobStatus.RUNNING, JobStatus.FAILED, False),  # the upstream failed it
    ],
)
def test_the_cost_that_counts(before: JobStatus, target: JobStatus, counted: bool) -> None:
    settled = costs.settled(_spec(), _job(before), target, reported_micros=None)
    assert settled == costs.Settled(ESTIMATE if counted else 0, "inferred")


def test_an_upstream_that_bills_failures_makes_its_failures_a_loss() -> None:
    settled = costs.settled(
        _spec(bills_failures=True), _job(JobStatus.RUNNING), JobStatus.FAILED, reported_micros=None
    )
    assert settled.micros == ESTIMATE


def test_a_job_no_upstream_accepted_costs_nothing() -> None:
    job = _job(JobStatus.SUBMITTING, accepted=False)
    assert costs.settled(_spec(bills_failures=True), job, JobStatus.EXPIRED, reported_micros=None).micros == 0


def test_a_reported_cost_wins_even_for_a_failed_job() -> None:
    settled = costs.settled(_spec(), _job(JobStatus.RUNNING), JobStatus.FAILED, reported_micros=123)
    assert settled == costs.Settled(123, "reported")


def test_the_estimate_is_for_the_route_actually_used() -> None:
    spec = _spec()
    job = _job(JobStatus.SUBMITTING, accepted=False)
    assert costs.estimate(spec, job, provider="runway", model="r") == {
        "upstream_cost_estimate_micros": 250_000,
        "upstream_cost_units": "25 credits",
        "upstream_cost_source": "published",
    }
    assert costs.estimate(spec, job, provider="kling", model="k")["upstream_cost_estimate_micros"] == ESTIMATE


def test_a_test_mode_job_is_estimated_at_the_first_route_with_a_cost() -> None:
    spec = _spec()
    job = replace(_job(JobStatus.SUBMITTING, accepted=False), mode="test")
    assert (
        costs.estimate(spec, job, provider="simulator", model="sim")["upstream_cost_estimate_micros"]
        == ESTIMATE
    )


def test_reported_units_are_priced_by_the_routes_cost_when_it_bills_in_them() -> None:
    spec = _spec()
    runway = _job(JobStatus.RUNNING, provider="runway", model="r")
    assert costs.reported(spec, runway, ReportedCost(units=Decimal("30"), unit_name="credits")) == {
        "upstream_cost_reported_micros": 300_000,
        "upstream_cost_units": "30 credits",
    }
    # Units the route does not price are kept as told, without a USD figure.
    assert costs.reported(spec, runway, ReportedCost(units=Decimal("41.2"), unit_name="predict-seconds")) == {
        "upstream_cost_units": "41.2 predict-seconds"
    }
    assert costs.reported(spec, runway, ReportedCost(micros=7)) == {"upstream_cost_reported_micros": 7}
    assert costs.reported(spec, runway, None) == {}
