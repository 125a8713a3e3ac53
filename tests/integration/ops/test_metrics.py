"""``/metrics`` scraped with prometheus_client's own parser, before and after real jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import Gateway, auth
from tests.integration.delivery.conftest import Receiver
from tests.integration.ops.conftest import Scrape
from vidgate.observability.metrics import Metrics


async def scrape(gateway: Gateway) -> Scrape:
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.05)


async def _create(gateway: Gateway, key: str, **fields: Any) -> dict[str, Any]:
    body = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4", **fields}
    response = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _fresh_gauges(gateway: Gateway) -> None:
    """Tests read the store gauges on every scrape (production caches them a few seconds)."""
    assert gateway.runtime.ops.gauges is not None
    gateway.runtime.ops.gauges.max_age_s = 0


async def test_a_job_moves_the_request_and_webhook_series(gateway: Gateway, receiver: Receiver) -> None:
    _fresh_gauges(gateway)
    key, _ = await gateway.account()
    before = await scrape(gateway)
    posts = {"dialect": "native", "route": "/v1/videos", "method": "POST", "status": "200"}
    polls = {"dialect": "native", "route": "/v1/videos/{video_id}", "method": "GET", "status": "200"}

    video = await _create(gateway, key, webhook_url=receiver.url)
    await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    await receiver.wait_for(lambda r: bool(r.of_type("video.completed")))

    async def delivered_counted() -> bool:
        after = await scrape(gateway)
        sent = len(receiver.delivered())
        return after.value("vidgate_webhook_deliveries_total", outcome="succeeded") >= sent

    await eventually(delivered_counted)
    after = await scrape(gateway)
    assert (
        after.value("vidgate_http_requests_total", **posts)
        == before.value("vidgate_http_requests_total", **posts) + 1
    )
    assert after.value("vidgate_http_requests_total", **polls) >= 1
    route = {"dialect": "native", "route": "/v1/videos", "method": "POST"}
    route_count = "vidgate_http_route_duration_seconds_count"
    assert after.value(route_count, **route) == before.value(route_count, **route) + 1
    histogram = "vidgate_http_request_duration_seconds_count"
    assert after.value(histogram, dialect="native") > before.value(histogram, dialect="native")
    assert before.value("vidgate_webhook_deliveries_total", outcome="succeeded") == 0
    assert after.value("vidgate_webhook_deliveries_total", outcome="succeeded") >= 2  # queued + completed
    # Ids never become label values: the job id is nowhere in the exposition.
    assert video["id"] not in after.text
    assert after.families["vidgate_http_request_duration_seconds"] == "histogram"
    assert after.value("vidgate_store_snapshot_ok") == 1


async def test_the_store_gauges_see_active_and_due_jobs_then_none(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    _fresh_gauges(gateway)
    key, _ = await gateway.account()
    empty = await scrape(gateway)
    assert empty.series("vidgate_jobs_active") == []
    assert empty.value("vidgate_jobs_due") == 0

    for _ in range(3):
        await _create(gateway, key)
    queued = await scrape(gateway)
    assert queued.value("vidgate_jobs_active", state="queued", model="sora-2") == 3
    assert queued.value("vidgate_jobs_due") == 3
    assert queued.value("vidgate_jobs_oldest_due_age_seconds") >= 0
    assert queued.value("vidgate_outbox_events_pending") >= 3  # no sender runs in the idle gateway

    await gateway.runtime.worker.drain(timeout_s=60)
    done = await scrape(gateway)
    assert done.series("vidgate_jobs_active") == []
    assert done.value("vidgate_jobs_due") == 0
    assert done.value("vidgate_jobs_oldest_due_age_seconds") == 0


async def test_the_store_gauges_are_cached_between_scrapes(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    gauges = gateway.runtime.ops.gauges
    assert gauges is not None
    gauges.max_age_s = 3600
    key, _ = await gateway.account()
    first = await scrape(gateway)
    await _create(gateway, key)
    cached = await scrape(gateway)
    assert cached.value("vidgate_jobs_due") == first.value("vidgate_jobs_due") == 0
    await gauges.refresh(force=True)
    assert (await scrape(gateway)).value("vidgate_jobs_due") == 1


async def test_a_job_moves_the_job_upstream_lease_and_money_series(gateway: Gateway) -> None:
    """End to end once the worker, JobService and billing call ``Metrics`` (the lead wires them)."""
    key, _ = await gateway.account()
    before = await scrape(gateway)
    video = await _create(gateway, key)
    done = await gateway.wait_terminal(f"/v1/videos/{video['id']}", key)
    assert done["vidgate_status"] == "succeeded"
    after = await scrape(gateway)

    def moved(name: str, **labels: str) -> bool:
        return after.value(name, **labels) > before.value(name, **labels)

    assert moved("vidgate_jobs_finished_total", model="sora-2", state="succeeded")
    assert moved("vidgate_job_duration_seconds_count", state="succeeded")
    assert moved("vidgate_upstream_calls_total", operation="submit", outcome="ok")
    assert moved("vidgate_upstream_calls_total", operation="poll", outcome="ok")
    assert moved("vidgate_job_lease_events_total", kind="leased")
    assert moved("vidgate_job_lease_events_total", kind="released")
    assert moved("vidgate_money_micro_usd_total", mode="test", kind="held")
    assert moved("vidgate_money_micro_usd_total", mode="test", kind="captured")
    assert after.value("vidgate_money_micro_usd_total", mode="live", kind="held") == 0
    assert moved("vidgate_rehosted_bytes_total")


def test_every_typed_method_moves_its_series() -> None:
    metrics = Metrics(role="worker", version="9.9", process_stats=False)
    metrics.http_request("thalam", "/thalam/v1/tasks/{task_id}", "GET", 404, 0.012)
    metrics.upstream_call("fal", "submit", "ok", 0.4)
    metrics.upstream_call("fal", "poll", "rate_limited", 0.1)
    metrics.upstream_call("fal", "teleport", "weird", 0.1)  # bounded: becomes "other"
    metrics.breaker_state("fal", "open")
    metrics.breaker_state("kling", "closed")
    metrics.breaker_state("fal", "half_open")
    for kind in ("leased", "renewed", "released", "lapsed", "leased"):
        metrics.lease_event(kind)
    metrics.job_finished("fal", "sora-2", "succeeded", 42.0)
    metrics.job_finished(None, "sora-2", "failed", 0.5)
    metrics.money("test", "held", 400_000)
    metrics.money("test", "captured", 300_000)
    metrics.money("test", "released", 100_000)
    metrics.money("live", "held", 1_000_000)
    metrics.money("live", "held", -5)  # refused, not counted
    metrics.rehosted(5_000_000, 1.5)
    metrics.possible_duplicate("fal")
    metrics.unknown_submit_outcome("fal")
    metrics.webhook_delivery("succeeded")
    metrics.webhook_delivery("retrying")

    s = Scrape(metrics.render().decode())
    assert s.value("vidgate_info", role="worker", version="9.9") == 1
    assert s.value("vidgate_http_requests_total", dialect="thalam", status="404") == 1
    assert s.value("vidgate_http_request_duration_seconds_bucket", dialect="thalam", le="0.025") == 1
    assert s.value("vidgate_http_route_duration_seconds_sum", route="/thalam/v1/tasks/{task_id}") == 0.012
    assert s.value("vidgate_upstream_calls_total", provider="fal", operation="submit", outcome="ok") == 1
    assert s.value("vidgate_upstream_calls_total", operation="poll", outcome="rate_limited") == 1
    assert s.value("vidgate_upstream_calls_total", operation="other", outcome="other") == 1
    assert s.value("vidgate_upstream_call_duration_seconds_count", provider="fal") == 3
    assert s.value("vidgate_breaker_state", provider="fal", state="half_open") == 1
    assert s.value("vidgate_breaker_state", provider="fal", state="open") == 0
    assert s.value("vidgate_breaker_state", provider="kling", state="closed") == 1
    assert s.value("vidgate_job_lease_events_total", kind="leased") == 2
    assert s.value("vidgate_job_lease_events_total", kind="lapsed") == 1
    assert s.value("vidgate_jobs_finished_total", provider="fal", model="sora-2", state="succeeded") == 1
    assert s.value("vidgate_jobs_finished_total", provider="none", state="failed") == 1
    assert s.value("vidgate_job_duration_seconds_sum", provider="fal") == 42.0
    assert s.value("vidgate_money_micro_usd_total", mode="test", kind="held") == 400_000
    assert s.value("vidgate_money_micro_usd_total", mode="test", kind="captured") == 300_000
    assert s.value("vidgate_money_micro_usd_total", mode="test", kind="released") == 100_000
    assert s.value("vidgate_money_micro_usd_total", mode="live", kind="held") == 1_000_000
    assert s.value("vidgate_rehosted_bytes_total") == 5_000_000
    assert s.value("vidgate_rehost_duration_seconds_count") == 1
    assert s.value("vidgate_upstream_possible_duplicates_total", provider="fal") == 1
    assert s.value("vidgate_upstream_unknown_submit_outcomes_total", provider="fal") == 1
    assert s.value("vidgate_webhook_deliveries_total", outcome="succeeded") == 1
    assert s.value("vidgate_webhook_deliveries_total", outcome="retrying") == 1


def test_two_apps_in_one_process_count_apart() -> None:
    one, two = Metrics(process_stats=False), Metrics(process_stats=False)
    one.webhook_delivery("failed")
    assert Scrape(one.render().decode()).value("vidgate_webhook_deliveries_total", outcome="failed") == 1
    assert Scrape(two.render().decode()).value("vidgate_webhook_deliveries_total", outcome="failed") == 0
