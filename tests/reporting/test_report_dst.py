"""DST with known hours: 23-hour and 25-hour local days, missing and repeated local hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from adtrack.reporting.request import parse_report_request
from tests.support.reporting import (
    BACKENDS,
    TRACKERS,
    RawEvent,
    load_rollups,
    migrated_engine,
    run_report,
)

IMP_TRACKER = TRACKERS[0]


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("dst")) as eng:
        # One valid impression at the start of every UTC hour around the 2026 changes,
        # costing 1 micro each so money sums can be checked too.
        events = []
        for first, days in (
            (datetime(2026, 3, 6, tzinfo=UTC), 26),
            (datetime(2026, 10, 23, tzinfo=UTC), 12),
        ):
            for h in range(days * 24):
                events.append(RawEvent(first + timedelta(hours=h), IMP_TRACKER, 1, 3, False))
        load_rollups(eng, events)
        yield eng


def day_counts(engine: Engine, tz: str, start: str, end: str) -> dict[date, int]:
    report = run_report(engine, parse_report_request({"start": start, "end": end, "timezone": tz}))
    return {row.interval_start.date(): row.counters.imps for row in report.rows}


@pytest.mark.parametrize(
    ("tz", "short_day", "long_day"),
    [
        ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
        ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
    ],
)
def test_local_days_have_23_and_25_hours(
    engine: Engine, tz: str, short_day: date, long_day: date
) -> None:
    spring = day_counts(
        engine,
        tz,
        (short_day - timedelta(days=1)).isoformat(),
        (short_day + timedelta(days=2)).isoformat(),
    )
    assert spring == {
        short_day - timedelta(days=1): 24,
        short_day: 23,
        short_day + timedelta(days=1): 24,
    }
    autumn = day_counts(
        engine,
        tz,
        (long_day - timedelta(days=1)).isoformat(),
        (long_day + timedelta(days=2)).isoformat(),
    )
    assert autumn == {
        long_day - timedelta(days=1): 24,
        long_day: 25,
        long_day + timedelta(days=1): 24,
    }


def test_hourly_rows_skip_the_missing_hour_and_repeat_the_doubled_one(engine: Engine) -> None:
    ny = "America/New_York"
    spring = run_report(
        engine,
        parse_report_request(
            {"start": "2026-03-08", "end": "2026-03-09", "interval": "hour", "timezone": ny}
        ),
    )
    labels = [row.interval_start.isoformat() for row in spring.rows]
    assert len(labels) == 23
    assert labels[:3] == [
        "2026-03-08T00:00:00-05:00",
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
    ]
    assert not any(label.startswith("2026-03-08T02:") for label in labels)

    autumn = run_report(
        engine,
        parse_report_request(
            {"start": "2026-11-01", "end": "2026-11-02", "interval": "hour", "timezone": ny}
        ),
    )
    labels = [row.interval_start.isoformat() for row in autumn.rows]
    assert len(labels) == 25
    assert labels[1:4] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    assert all(row.counters.imps == 1 for row in autumn.rows)
    assert autumn.totals.imps == 25 and autumn.totals.media_cost_micros == 25


def test_month_and_cumulative_across_the_change(engine: Engine) -> None:
    report = run_report(
        engine,
        parse_report_request(
            {
                "start": "2026-03-06",
                "end": "2026-04-01",
                "interval": "month",
                "timezone": "Europe/Berlin",
            }
        ),
    )
    (row,) = report.rows
    assert row.interval_start == datetime(2026, 3, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    # Berlin 03-06 00:00 is UTC 03-05 23:00 (before the data); 04-01 00:00 is UTC 03-31 22:00.
    assert row.counters.imps == 26 * 24 - 2
    cumulative = run_report(
        engine,
        parse_report_request(
            {
                "start": "2026-03-06",
                "end": "2026-04-01",
                "interval": "cumulative",
                "timezone": "Europe/Berlin",
            }
        ),
    )
    assert [r.counters for r in cumulative.rows] == [row.counters]
    assert cumulative.rows[0].interval_start.isoformat() == "2026-03-06T00:00:00+01:00"


def test_local_datetime_in_the_repeated_hour_means_its_first_occurrence(engine: Engine) -> None:
    # 01:30 on 2026-11-01 happens twice in New York; a bare local time means the first one.
    report = run_report(
        engine,
        parse_report_request(
            {
                "start": "2026-11-01T01:00",
                "end": "2026-11-01T03:00",
                "interval": "hour",
                "timezone": "America/New_York",
            }
        ),
    )
    assert [r.interval_start.isoformat() for r in report.rows] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
