"""What the upstream charged for a job: the estimate when it is accepted, the figure at settlement.

The catalog states each route's upstream cost (``RouteSpec.cost``, a ``PriceRule``);
``JobLifecycle`` asks this module for the numbers it writes beside the job's charge.

* Accepted: the estimate for the route actually used (for a test-mode job, the first
  catalog route with a cost: what the same job would have cost live).
* Settled: the cost that counts (``upstream_cost_micros``):

  - the upstream's own figure when it reported one (``source = "reported"``), USD or
    units the route's cost prices; the estimate stays beside it;
  - otherwise the estimate when the upstream made the video (the job succeeded, or it
    failed here after the upstream finished: an output we could not fetch or refused),
    or when the job ended here while the upstream was working on it (expired,
    canceled): the upstream may still finish and bill, so it counts as a loss;
  - otherwise 0: the upstream never accepted the job, or it failed the job itself,
    unless the route's cost says ``bills_failures``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidgate.catalog.models import ModelSpec, RouteSpec
from vidgate.catalog.pricing import UpstreamCost, units_cost, upstream_cost
from vidgate.domain.job import Job, ReportedCost
from vidgate.domain.states import JobStatus

SIMULATOR = "simulator"
REPORTED = "reported"


def cost_route(spec: ModelSpec, *, mode: str, provider: str | None, model: str | None) -> RouteSpec | None:
    """The catalog route whose cost applies: the one used, or for a test-mode (simulated)
    job the first route that states a cost."""
    if mode == "test" or provider == SIMULATOR:
        return next((r for r in spec.routes if r.cost is not None), None)
    for route in spec.routes:
        if route.provider == provider and model in (route.model, route.image_model):
            return route
    return next((r for r in spec.routes if r.provider == provider), None)


def estimate(spec: ModelSpec, job: Job, *, provider: str | None, model: str | None) -> dict[str, Any]:
    """The job's columns for the estimate of the route that accepted it (empty when none)."""
    route = cost_route(spec, mode=job.mode, provider=provider, model=model)
    cost: UpstreamCost | None = upstream_cost(spec, route, job.request) if route is not None else None
    if cost is None:
        return {}
    return {
        "upstream_cost_estimate_micros": cost.micros,
        "upstream_cost_units": cost.units,
        "upstream_cost_source": cost.source,
    }


def reported(spec: ModelSpec, job: Job, told: ReportedCost | None) -> dict[str, Any]:
    """The job's columns for what the upstream said it cost (empty when it said nothing)."""
    if told is None or (told.micros is None and told.units is None):
        return {}
    micros = told.micros
    if micros is None and told.units is not None:
        route = cost_route(spec, mode=job.mode, provider=job.provider, model=job.upstream_model)
        micros = units_cost(route.cost if route else None, told.units, told.unit_name)
    values: dict[str, Any] = {}
    if micros is not None:
        values["upstream_cost_reported_micros"] = micros
    if told.units is not None:
        values["upstream_cost_units"] = told.units_text
    return values


@dataclass(frozen=True, slots=True)
class Settled:
    micros: int
    source: str | None


def settled(spec: ModelSpec, job: Job, target: JobStatus, *, reported_micros: int | None) -> Settled:
    """The upstream cost that counts when ``job`` (as it stood before) ends in ``target``."""
    if reported_micros is not None:
        return Settled(reported_micros, REPORTED)
    source = job.upstream_cost_source if job.upstream_cost_source != REPORTED else None
    estimate_micros = job.upstream_cost_estimate_micros
    if estimate_micros is None or job.upstream_id is None:
        return Settled(0, source)
    upstream_made_it = target is JobStatus.SUCCEEDED or job.status is JobStatus.FETCHING
    ended_here_while_running = job.status is JobStatus.RUNNING and target in (
        JobStatus.EXPIRED,
        JobStatus.CANCELED,
    )
    if upstream_made_it or ended_here_while_running:
        return Settled(estimate_micros, source)
    route = cost_route(spec, mode=job.mode, provider=job.provider, model=job.upstream_model)
    bills = bool(route and route.cost and route.cost.bills_failures)
    return Settled(estimate_micros if bills else 0, source)
