"""Report sums are exact integers on SQLite and PostgreSQL: past 32 bits (what PostgreSQL's
fast integer sum holds per row), past 2^53 (what a float keeps exact) and up to the 64-bit
limit, on every path the engine reads rollups by; a total past 64 bits is an error, never a
wrapped or rounded number."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from adtrack.adapters.sql import tables as t
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.request import parse_report_request
from tests.support.reporting import (
    BACKENDS,
    TRACKERS,
    clear_reporting_tables,
    migrated_engine,
    run_report,
)

DAY = datetime(2026, 1, 5, tzinfo=UTC)
# Trackers 5 and 6 both serve line item 3, so a report by line item adds their rows.
PAIR = (TRACKERS[4], TRACKERS[5])
# Each way the engine reads rollups: UTC days selected by time, one cumulative bucket (summed
# per bucket in SQL), and a New York day (a UTC day plus and minus edge hours, summed per UTC
# day in SQL).
REQUESTS = {
    "utc_days": {"start": "2026-01-05", "end": "2026-01-06", "group_by": "line_item"},
    "cumulative": {
        "start": "2026-01-04",
        "end": "2026-01-07",
        "interval": "cumulative",
        "group_by": "line_item",
    },
    "new_york_day": {
        "start": "2026-01-05",
        "end": "2026-01-06",
        "timezone": "America/New_York",
        "group_by": "line_item",
    },
}


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("sums")) as eng:
        yield eng


def load_pair(engine: Engine, first: int, second: int) -> None:
    """One rollup row per tracker of :data:`PAIR` at 12:00 UTC on :data:`DAY` (hourly and
    daily), every counter holding ``first`` or ``second``."""
    clear_reporting_tables(engine)
    rows = []
    for tracker, value in zip(PAIR, (first, second), strict=True):
        rows.append(
            {
                "imp_type": tracker.imp_type,
                "tracker_id": tracker.id,
                "advertiser_id": tracker.advertiser_id,
                "line_item_id": tracker.line_item_id,
                "publisher_id": tracker.publisher_id,
                "placement_id": tracker.placement_id or 0,
                "payment_rule_id": tracker.payment_rule_id or 0,
                **dict.fromkeys(t.ROLLUP_SUMS, value),
            }
        )
    with engine.begin() as conn:
        conn.execute(
            t.rollup_hourly.insert(), [{"hour": DAY + timedelta(hours=12), **r} for r in rows]
        )
        conn.execute(t.rollup_daily.insert(), [{"day": DAY, **r} for r in rows])


@pytest.mark.parametrize("request_name", list(REQUESTS))
@pytest.mark.parametrize(
    ("first", "second", "total"),
    [
        pytest.param(2**31 - 1, 2, 2**31 + 1, id="past-2^31"),
        pytest.param(2**53, 1, 2**53 + 1, id="past-2^53"),
        pytest.param(2**62, 2**62 - 1, 2**63 - 1, id="largest-64-bit"),
        pytest.param(-(2**62), -(2**62), -(2**63), id="smallest-64-bit"),
    ],
)
def test_sums_are_exact(
    engine: Engine, request_name: str, first: int, second: int, total: int
) -> None:
    load_pair(engine, first, second)
    report = run_report(engine, parse_report_request(REQUESTS[request_name]))
    expected = Counters(*(total,) * len(t.ROLLUP_SUMS))
    assert [(row.dimensions[0].id, row.counters) for row in report.rows] == [(3, expected)]
    assert report.totals == expected


@pytest.mark.parametrize("request_name", list(REQUESTS))
def test_a_total_past_64_bits_is_an_error(engine: Engine, request_name: str) -> None:
    load_pair(engine, 2**62, 2**62)
    with pytest.raises(DBAPIError, match="out of range|overflow"):
        run_report(engine, parse_report_request(REQUESTS[request_name]))
