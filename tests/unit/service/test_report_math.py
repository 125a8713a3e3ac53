"""The margin report's arithmetic and its query: percentiles, money to the cent, and a
clear refusal of a bad parameter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vidgate.errors import InvalidRequest
from vidgate.service.reports import MarginRow, cents, parse_query, percentile

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_percentiles_interpolate_between_neighbours() -> None:
    assert percentile([], 0.5) is None
    assert percentile([41.2], 0.95) == 41.2
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert percentile([float(n) for n in range(0, 101, 10)], 0.95) == 95.0


def test_money_is_shown_to_the_cent_with_its_sign() -> None:
    assert cents(1) == "$0.00"
    assert cents(5_000) == "$0.01"
    assert cents(-750_000) == "-$0.75"
    assert cents(1_234_567_890) == "$1,234.57"


def test_margin_is_revenue_less_refunds_less_upstream_cost() -> None:
    row = MarginRow("m", 3, 2, 1, 10.0, 1_000_000, 600_000, 100_000, 40.0, 80.0)
    assert row.margin_micros == 300_000 and row.failure_rate == 0.333


def test_the_query_defaults_to_thirty_days_of_live_jobs_by_day() -> None:
    query = parse_query(None, None, None, None, now=NOW)
    assert (query.by, query.mode, query.until) == ("day", "live", NOW)
    assert (query.until - query.since).days == 30
    dated = parse_query("route", "2026-11-01", "2026-11-02T06:00:00+02:00", "test", now=NOW)
    assert dated.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert dated.until == datetime(2026, 11, 2, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "param"),
    [
        (("week", None, None, None), "by"),
        (("day", None, None, "prod"), "mode"),
        (("day", "yesterday", None, None), "since"),
        (("day", "2026-11-05", "2026-11-01", None), "since"),
        (("day", "9999-12-31T23:00:00-05:00", None, None), "since"),  # past year 9999 in UTC
        (("day", None, "0001-01-02", None), "until"),  # no 30 days before it
    ],
)
def test_a_bad_query_names_its_parameter(args: tuple[str | None, ...], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_query(*args, now=NOW)
    assert caught.value.param == param
