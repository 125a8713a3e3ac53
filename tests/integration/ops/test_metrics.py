"""``/metrics`` scraped with prometheus_client's own parser, before and after real jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway, _gateway, auth
from tests.integration.delivery.conftest import Receiver
from tests.integration.ops.conftest import Scrape
from vidgate.config import Settings
from vidgate.observability.metrics import Metrics
from vidgate.observability.store_gauges import StoreSnapshot


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


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def _create(gateway: Gateway, key: str, **fields: Any) -> dict[str, Any]:
    body = {"model": "sora-2", "prompt": "a lighthouse at dusk", "seconds": "4", **fields}
    response = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def scrape_fresh(gateway: Gateway) -> Scrape:
    """Read the store gauges now (the timer's next read is an hour away here), then scrape."""
    gauges = gateway.runtime.ops.gauges
    assert gauges is not None
    assert await gauges.refresh()
    return await scrape(gateway)


async def test_a_job_moves_the_request_and_webhook_series(gateway: Gateway, receiver: Receiver) -> None:
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
    key, _ = await gateway.account()
    empty = await scrape_fresh(gateway)
    assert empty.series("vidgate_jobs_active") == []
    assert empty.value("vidgate_jobs_due") == 0

    for _ in range(3):
        await _create(gateway, key)
    queued = await scrape_fresh(gateway)
    assert queued.value("vidgate_jobs_active", state="queued", model="sora-2") == 3
    assert queued.value("vidgate_jobs_due") == 3
    assert queued.value("vidgate_jobs_oldest_due_age_seconds") >= 0
    assert queued.value("vidgate_outbox_events_pending") >= 3  # no sender runs in the idle gateway

    await gateway.runtime.worker.drain(timeout_s=60)
    done = await scrape_fresh(gateway)
    assert done.series("vidgate_jobs_active") == []
    assert done.value("vidgate_jobs_due") == 0
    assert done.value("vidgate_jobs_oldest_due_age_seconds") == 0


async def test_a_scrape_never_reads_the_store(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    gauges = gateway.runtime.ops.gauges
    assert gauges is not None
    await eventually(_async(lambda: gauges.refreshes >= 1))  # the timer's first read, at start
    key, _ = await gateway.account()
    first = await scrape(gateway)
    await _create(gateway, key)
    reads = gauges.refreshes
    for _ in range(3):
        assert (await scrape(gateway)).value("vidgate_jobs_due") == first.value("vidgate_jobs_due") == 0
    assert gauges.refreshes == reads
    assert await gauges.refresh()
    assert (await scrape(gateway)).value("vidgate_jobs_due") == 1


async def test_the_timer_refreshes_the_store_gauges(settings: Settings) -> None:
    """Started and stopped with the app: a job shows up in a scrape without anyone asking."""
    running = _gateway(settings.model_copy(update={"metrics_refresh_s": 0.05}), run_worker=False)
    gateway = await anext(running)
    try:
        key, _ = await gateway.account()
        await _create(gateway, key)

        async def seen() -> bool:
            return (await scrape(gateway)).value("vidgate_jobs_due") == 1

        await eventually(seen)
        timer = [t for t in gateway.runtime._tasks if t.get_name() == "store-gauges"]
        assert len(timer) == 1
    finally:
        await running.aclose()  # the lifespan ends
    assert timer[0].done()


async def test_a_failing_store_read_keeps_the_last_values(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    gauges = gateway.runtime.ops.gauges
    assert gauges is not None
    key, _ = await gateway.account()
    await _create(gateway, key)
    assert await gauges.refresh()
    fetch = gauges._fetch

    async def broken() -> StoreSnapshot:
        raise ConnectionError("the database went away")

    gauges._fetch = broken
    try:
        assert not await gauges.refresh()
        after = await scrape(gateway)
    finally:
        gauges._fetch = fetch
    assert after.value("vidgate_jobs_due") == 1  # the last good reading
    assert after.value("vidgate_store_snapshot_ok") == 0
    assert after.value("vidgate_store_snapshot_age_seconds") >= 0
    assert await gauges.refresh()
    assert (await scrape(gateway)).value("vidgate_store_snapshot_ok") == 1


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


def test_the_exposition_matches_prometheus_clients_own() -> None:
    """``Metrics.render`` writes the text format itself (cheaper per scrape): the same
    families, types, samples and values as ``generate_latest``, odd label values included."""
    metrics = Metrics(role="api", version="1.0", process_stats=False)
    metrics.http_request("native", "/v1/videos/{video_id}", "GET", 200, 0.03)
    metrics.http_request("native", "/v1/videos", "POST", 402, 0.001)
    metrics.upstream_call('fal"\\\nx', "poll", "ok", 2.5)  # a quote, a backslash, a newline
    metrics.job_finished("fal", "sora-2", "succeeded", 42.0)
    metrics.money("test", "held", 12_345)
    for _ in range(2):  # the second render reuses the remembered label parts
        ours = metrics.render().decode()
        theirs = generate_latest(metrics.registry).decode()

        def samples(text: str) -> list[tuple[str, str, tuple[tuple[str, str], ...], float]]:
            return sorted(
                (family.type, s.name, tuple(sorted(s.labels.items())), s.value)
                for family in text_string_to_metric_families(text)
                for s in family.samples
            )

        assert samples(ours) == samples(theirs)
        assert Scrape(ours).value("vidgate_upstream_calls_total", provider='fal"\\\nx') == 1
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())
