"""Routes' ``resolutions`` and ``aspect_ratios``: the worker sends a job only to a route
that can make the shape it was sold, and says so when no configured route can."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Gateway, _gateway
from tests.integration.worker.conftest import Driver, Scripted
from vidgate.config import Settings
from vidgate.domain.states import JobStatus

CATALOG = """
[[model]]
name = "ops-frames"
label = "Ops frames"
vendor = "ops"
durations = [5]
default_duration = 5
resolutions = ["720p", "1080p"]
default_resolution = "720p"
aspect_ratios = ["16:9", "21:9"]
default_aspect_ratio = "16:9"
price = { rule = "flat", amount = "0.50" }

[[model.routes]]
provider = "ark"
model = "ark-frames"
resolutions = ["720p", "1080p"]
aspect_ratios = ["16:9"]

[[model.routes]]
provider = "fal"
model = "fal-frames"
resolutions = ["720p"]

[[model]]
name = "ops-frames-unconfigured"
label = "Ops frames, second route not configured"
vendor = "ops"
durations = [5]
default_duration = 5
aspect_ratios = ["16:9", "21:9"]
default_aspect_ratio = "16:9"
price = { rule = "flat", amount = "0.50" }

[[model.routes]]
provider = "ark"
model = "ark-frames"
aspect_ratios = ["16:9"]

[[model.routes]]
provider = "luma"
model = "luma-frames"
"""


@pytest.fixture
async def shaped(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Driver, Scripted, Scripted]]:
    catalog = tmp_path / "ops.toml"
    catalog.write_text(CATALOG)
    settings.catalog = catalog
    running: Gateway
    async for running in _gateway(settings, run_worker=False):
        ark, fal = Scripted(name="ark"), Scripted(name="fal")
        running.runtime.services.pool.install("ark", ark)  # type: ignore[arg-type]
        running.runtime.services.pool.install("fal", fal)  # type: ignore[arg-type]
        key, _ = await running.account("live-co", credit="50", mode="live")
        yield Driver(running, ark, key), ark, fal


async def test_a_job_goes_to_the_first_route_that_makes_its_aspect_ratio(
    shaped: tuple[Driver, Scripted, Scripted],
) -> None:
    driver, ark, fal = shaped
    job_id = await driver.create(model="ops-frames", aspect_ratio="21:9")
    job = await driver.step(job_id)
    assert job.status is JobStatus.RUNNING
    assert ark.of(job_id) == [] and len(fal.of(job_id)) == 1
    [attempt] = await driver.attempts(job_id)
    assert attempt.provider == "fal" and attempt.route_index == 1


async def test_a_job_goes_to_the_first_route_that_makes_its_resolution(
    shaped: tuple[Driver, Scripted, Scripted],
) -> None:
    driver, ark, fal = shaped
    # 16:9 at 1080p: fal makes the frame but not the resolution; ark makes both.
    job_id = await driver.create(model="ops-frames", aspect_ratio="16:9", resolution="1080p")
    assert (await driver.step(job_id)).status is JobStatus.RUNNING
    assert len(ark.of(job_id)) == 1 and fal.of(job_id) == []


async def test_a_shape_every_route_makes_keeps_the_routes_order(
    shaped: tuple[Driver, Scripted, Scripted],
) -> None:
    driver, ark, fal = shaped
    job_id = await driver.create(model="ops-frames")  # 16:9 and 720p by default
    assert (await driver.step(job_id)).status is JobStatus.RUNNING
    assert len(ark.of(job_id)) == 1 and fal.of(job_id) == []


async def test_no_configured_route_for_the_shape_fails_the_job_with_a_clear_reason(
    shaped: tuple[Driver, Scripted, Scripted],
) -> None:
    driver, ark, _fal = shaped
    job_id = await driver.create(model="ops-frames-unconfigured", aspect_ratio="21:9")
    job = await driver.step(job_id)
    assert job.status is JobStatus.FAILED
    assert ark.of(job_id) == [] and await driver.attempts(job_id) == []
    assert job.error_code == "upstream_rejected"
    assert "aspect ratio 21:9" in (job.error_message or "") and "ark makes 16:9" in (job.error_message or "")
    assert job.refunded_micros == job.held_micros
