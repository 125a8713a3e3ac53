"""Upstream cost and margin, end to end: a job is sold at the catalog's price and bought at its
route's upstream cost, settlement records both, and the report API (JSON and CSV) and
``vidgate report`` read the same margin back.

The catalog's numbers are worked out here by hand (rate x seconds), not through
``vidgate.catalog.pricing``, so a pricing or settlement bug cannot agree with itself.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway, auth
from tests.integration.worker.conftest import Driver, Scripted
from vidgate.catalog.models import ModelSpec, PriceRule
from vidgate.clock import utcnow
from vidgate.config import Settings
from vidgate.domain.job import Job, ReportedCost
from vidgate.domain.states import JobStatus
from vidgate.money import MICROS_PER_USD
from vidgate.providers.base import UpstreamOutput, UpstreamRef, UpstreamStatus
from vidgate.store import ledger as ledger_store
from vidgate.testing.fake import sample_mp4

ADMIN = {"Authorization": "Bearer margin-admin"}
SECONDS = 5


@dataclass
class Billing(Scripted):
    """The scripted Kling upstream, with outputs that fail to re-host and stated costs."""

    broken: set[str] = field(default_factory=set)  # upstream ids whose video is not a video
    costs: dict[str, ReportedCost] = field(default_factory=dict)  # upstream id -> what it says it cost

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        return UpstreamStatus(
            "succeeded",
            outputs=(UpstreamOutput(url=f"mem://{ref.id}"),),
            reported_cost=self.costs.get(ref.id),
        )

    async def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        if output.url.removeprefix("mem://") in self.broken:
            yield b"this is not a video"
            return
        yield sample_mp4(seconds=SECONDS)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        simulator_latency_s=0.1,
        worker_poll_interval_s=0.05,
        rate_limit_per_minute=0,
        secret_key="test-secret",
        admin_token="margin-admin",
    )


@pytest.fixture
async def billing(idle_gateway: Gateway) -> tuple[Driver, Billing]:
    upstream = Billing()
    idle_gateway.runtime.services.pool.install("kling", upstream)  # type: ignore[arg-type]
    key, _ = await idle_gateway.account("margin-co", credit="50", mode="live")
    return Driver(idle_gateway, upstream, key), upstream


def _micros(usd: Decimal) -> int:
    return int(usd * MICROS_PER_USD)


def _rate(rule: PriceRule, variant: str) -> Decimal:
    amount = rule.variants.get(variant, rule.amount)
    assert amount is not None
    return amount


def _sale(spec: ModelSpec) -> int:
    """Kyma sells per second: the rate times the seconds ordered."""
    assert spec.price is not None and spec.price.rule == "per_second" and spec.price.amount is not None
    return _micros(spec.price.amount * SECONDS)


def _cost(spec: ModelSpec, *, audio: bool) -> int:
    """Kling's own API, asked for mode "pro": the pro rate (with or without sound) times the seconds."""
    route = spec.routes[0]
    assert route.provider == "kling" and route.params == {"mode": "pro"} and route.cost is not None
    assert route.cost.rule == "per_second" and route.cost.variant_by == ("mode", "audio")
    return _micros(_rate(route.cost, "pro+audio" if audio else "pro+silent") * SECONDS)


async def _run(driver: Driver, model: str) -> Job:
    job_id = await driver.create(model=model, duration=SECONDS)
    assert (await driver.step(job_id)).status is JobStatus.RUNNING
    return await driver.step(job_id)


async def _report(gateway: Gateway, **params: str) -> Any:
    answer = await gateway.client.get("/admin/reports/margin", headers=ADMIN, params=params)
    assert answer.status_code == 200, answer.text
    return answer


def _window() -> dict[str, str]:
    now = utcnow()
    return {"since": (now - timedelta(days=1)).isoformat(), "until": (now + timedelta(days=1)).isoformat()}


async def test_a_job_is_sold_and_bought_at_the_catalogs_prices_and_the_report_reads_the_margin(
    billing: tuple[Driver, Billing], settings: Settings
) -> None:
    driver, upstream = billing
    gateway = driver.gateway
    catalog = gateway.services.catalog
    silent, loud = catalog.get("kling-3-pro"), catalog.get("kling-3-pro-audio")

    sold = await _run(driver, "kling-3-pro")
    assert sold.status is JobStatus.SUCCEEDED
    assert sold.charged_micros == _sale(silent) == 756_000
    assert sold.upstream_cost_micros == sold.upstream_cost_estimate_micros == _cost(silent, audio=False)
    assert sold.upstream_cost_source == "inferred" and sold.upstream_cost_reported_micros is None

    # The upstream made the video, we could not re-host it: nothing sold, the upstream still bills.
    upstream.broken.add("up-2")
    lost = await _run(driver, "kling-3-pro-audio")
    assert lost.status is JobStatus.FAILED and lost.error_code == "invalid_output"
    assert lost.charged_micros is None and lost.refunded_micros == lost.held_micros == _sale(loud)
    assert lost.upstream_cost_micros == _cost(loud, audio=True) > 0

    # An admin refund of part of the first job, tied to it.
    refund = 56_000
    async with gateway.services.db.transaction() as conn:
        await ledger_store.credit(
            conn,
            account_id=sold.account_id,
            mode="live",
            amount=refund,
            kind="adjustment",
            memo="goodwill refund",
            at=utcnow(),
            job_id=sold.id,
        )

    sold_margin = _sale(silent) - refund - _cost(silent, audio=False)
    lost_margin = -_cost(loud, audio=True)
    assert sold_margin > 0 > lost_margin

    body = (await _report(gateway, by="model", **_window())).json()
    assert body["object"] == "report" and body["by"] == "model" and body["mode"] == "live"
    rows = {row["key"]: row for row in body["rows"]}
    assert set(rows) == {"kling-3-pro", "kling-3-pro-audio"}
    good, bad = rows["kling-3-pro"], rows["kling-3-pro-audio"]
    assert (good["jobs"], good["succeeded"], good["failed"], good["failure_rate"]) == (1, 1, 0, 0.0)
    assert good["revenue_micros"] == _sale(silent) and good["refunds_micros"] == refund
    assert good["upstream_cost_micros"] == _cost(silent, audio=False)
    assert good["margin_micros"] == sold_margin and good["seconds"] == pytest.approx(SECONDS, abs=0.1)
    assert good["margin"] == f"${Decimal(sold_margin) / MICROS_PER_USD:.2f}"
    assert good["p50_s"] is not None and good["p95_s"] >= good["p50_s"] >= 0
    assert (bad["jobs"], bad["succeeded"], bad["failed"], bad["failure_rate"]) == (1, 0, 1, 1.0)
    assert bad["revenue_micros"] == 0 and bad["margin_micros"] == lost_margin < 0
    assert bad["margin"].startswith("-$") and bad["p50_s"] is None
    totals = body["totals"]
    assert totals["jobs"] == 2 and totals["margin_micros"] == sold_margin + lost_margin
    assert "key" not in totals

    by_route = (await _report(gateway, by="route", **_window())).json()
    assert [row["key"] for row in by_route["rows"]] == ["kling/kling-v3"]
    assert by_route["rows"][0]["margin_micros"] == sold_margin + lost_margin

    by_day = (await _report(gateway, by="day", **_window())).json()["rows"]
    days = {job.completed_at.date().isoformat() for job in (sold, lost) if job.completed_at}
    assert {row["key"] for row in by_day} == days
    assert sum(row["margin_micros"] for row in by_day) == sold_margin + lost_margin
    [account] = (await _report(gateway, by="account", **_window())).json()["rows"]
    assert (account["key"], account["label"], account["jobs"]) == (sold.account_id, "margin-co", 2)

    exported = await _report(gateway, by="model", format="csv", **_window())
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert list(table[0]) == list(good)  # the JSON row's columns, in order
    assert {row["key"]: int(row["margin_micros"]) for row in table} == {
        "kling-3-pro": sold_margin,
        "kling-3-pro-audio": lost_margin,
    }

    cli = await _cli(settings, "report", "--by", "model", "--since", _window()["since"], "--csv")
    assert cli.returncode == 0, cli.stderr
    from_cli = {row["key"]: int(row["margin_micros"]) for row in csv.DictReader(io.StringIO(cli.stdout))}
    assert from_cli == {"kling-3-pro": sold_margin, "kling-3-pro-audio": lost_margin}

    shown = await _cli(settings, "report", "--by", "model", "--since", _window()["since"])
    assert shown.returncode == 0, shown.stderr
    line = next(row for row in shown.stdout.splitlines() if row.startswith("kling-3-pro-audio "))
    assert f"-${Decimal(-lost_margin) / MICROS_PER_USD:.2f}" in line.split()


async def test_a_reported_cost_wins_over_the_estimate_and_both_are_kept(
    billing: tuple[Driver, Billing],
) -> None:
    driver, upstream = billing
    upstream.costs["up-1"] = ReportedCost(micros=612_345)
    job = await _run(driver, "kling-3-pro")
    assert job.status is JobStatus.SUCCEEDED
    assert job.upstream_cost_estimate_micros == _cost(
        driver.gateway.services.catalog.get("kling-3-pro"), audio=False
    )
    assert (job.upstream_cost_micros, job.upstream_cost_reported_micros) == (612_345, 612_345)
    assert job.upstream_cost_source == "reported"


async def test_a_test_mode_job_shows_what_it_would_have_cost_live(billing: tuple[Driver, Billing]) -> None:
    driver, _ = billing
    gateway = driver.gateway
    key, _ = await gateway.account("tester", credit="20", mode="test")
    answer = await gateway.client.post(
        "/v1/videos",
        headers=auth(key),
        json={"model": "kling-3-pro", "prompt": "a kite", "duration": SECONDS},
    )
    assert answer.status_code == 200, answer.text
    await gateway.runtime.worker.drain(timeout_s=60)
    job = await driver.job(answer.json()["id"])
    assert job.status is JobStatus.SUCCEEDED and job.provider == "simulator"
    live = _cost(gateway.services.catalog.get("kling-3-pro"), audio=False)
    assert job.upstream_cost_micros == job.upstream_cost_estimate_micros == live
    assert job.upstream_cost_source == "inferred"

    test_rows = (await _report(gateway, by="provider", mode="test", **_window())).json()["rows"]
    assert [(r["key"], r["upstream_cost_micros"]) for r in test_rows] == [("simulator", live)]
    assert (await _report(gateway, by="provider", mode="live", **_window())).json()["rows"] == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"by": "colour"}, "by"),
        ({"mode": "sandbox"}, "mode"),
        ({"since": "last tuesday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"since": "2026-11-02", "until": "2026-11-01"}, "since"),
        ({"format": "xlsx"}, "format"),
    ],
)
async def test_bad_report_parameters_are_a_400_that_names_them(
    idle_gateway: Gateway, params: dict[str, str], param: str
) -> None:
    answer = await idle_gateway.client.get("/admin/reports/margin", headers=ADMIN, params=params)
    assert answer.status_code == 400, answer.text
    assert param in answer.text


async def test_the_cli_refuses_a_bad_argument_in_one_line(settings: Settings) -> None:
    done = await _cli(settings, "report", "--by", "colour")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "by must be one of" in done.stderr


async def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIDGATE_")},
        "VIDGATE_DATABASE_URL": str(settings.database_url),
        "VIDGATE_DATA_DIR": str(settings.data_dir),
        "VIDGATE_SECRET_KEY": "test-secret",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "vidgate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
