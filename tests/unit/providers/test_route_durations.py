from __future__ import annotations

from vidgate.providers.base import Route


def test_a_route_without_durations_takes_what_was_asked() -> None:
    assert Route("fal", "m").fit_duration(7) == 7
    assert Route("fal", "m").fit_duration(None) is None


def test_the_shortest_upstream_duration_that_covers_the_request() -> None:
    route = Route("kling", "m", durations=(5, 10))
    assert route.fit_duration(1) == 5
    assert route.fit_duration(5) == 5
    assert route.fit_duration(7) == 10
    assert route.fit_duration(11) is None
