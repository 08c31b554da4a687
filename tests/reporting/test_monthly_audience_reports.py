"""Reports by line item and an audience column read whole UTC months from the monthly
line-item audience rollups, with days and hours at the edges: the numbers are exactly those of
the same report read from days and hours only, in UTC and in New York, cumulative, by month
and by day, on SQLite and PostgreSQL. The rollups are written by the aggregator's sink."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_reads import SqlRollupReads
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting import formats
from adtrack.reporting.engine import ReportEngine
from adtrack.reporting.plan import months_as_days, plan_buckets, plan_sources
from adtrack.reporting.request import parse_report_request
from adtrack.services.ports import BucketSums, DeviceKey, GeoKey, RollupDelta, Terms
from tests.support.reporting import (
    BACKENDS,
    clear_reporting_tables,
    migrated_engine,
    run_report,
)

IMP, CLICK = 9, 10
FIRST_HOUR = datetime(2026, 1, 25, tzinfo=UTC)
HOURS = 24 * 95  # to April 30
LINE_ITEMS = {1: 1, 2: 1, 3: 2}  # line item -> advertiser
COUNTRIES = ("US", "FR", "")
DEVICES = (("mobile", "iOS", "Mobile Safari"), ("desktop", "Windows", "Chrome"), ("", "", ""))


def audience_delta(rng: random.Random) -> RollupDelta:
    """Counts in every fifth hour (and the last hours of every month) for the line items."""
    delta = RollupDelta()
    first = int(FIRST_HOUR.timestamp()) // 3600
    for offset in range(HOURS):
        when = FIRST_HOUR + timedelta(hours=offset)
        if offset % 5 and (when + timedelta(hours=3)).month == when.month:
            continue
        for line_item, advertiser in LINE_ITEMS.items():
            imp_type = CLICK if offset % 7 == 0 else IMP
            counts = Counters(
                imps=rng.randint(0, 9) if imp_type == IMP else 0,
                clicks=rng.randint(0, 3) if imp_type == CLICK else 0,
                invalid_imps=rng.randint(0, 2),
                media_cost_micros=rng.randint(0, 10**6),
                booked_revenue_micros=rng.randint(0, 10**6),
            )
            country = COUNTRIES[(offset + line_item) % 3]
            device = DEVICES[(offset // 5 + line_item) % 3]
            hour = first + offset
            delta.geo[GeoKey(hour, imp_type, advertiser, line_item, country)] = counts
            delta.devices[DeviceKey(hour, imp_type, advertiser, line_item, *device)] = counts
    return delta


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("monthly")) as eng:
        clear_reporting_tables(eng)
        sink = SqlRollupSink(eng)
        rng = random.Random(17)
        # Two deltas over the same hours: the monthly upserts add to what is there.
        sink.add_rollups(audience_delta(rng))
        sink.add_rollups(audience_delta(rng))
        yield eng


class DaysAndHoursOnly:
    """The SQL rollup reads with the plan's months read as their days: how reports were read
    before the monthly level (the reference the monthly reads must equal)."""

    def __init__(self, reads: SqlRollupReads) -> None:
        self._reads = reads

    def bucket_sums(
        self,
        month_terms: Terms,
        day_terms: Terms,
        hour_terms: Terms,
        group_by: Sequence[str],
        filters: Mapping[str, Sequence[int | str]],
    ) -> BucketSums:
        days = months_as_days(month_terms, day_terms)
        return self._reads.bucket_sums({}, days, hour_terms, group_by, filters)

    def names(self, column: str, ids: Sequence[int]) -> dict[int, str]:
        return self._reads.names(column, ids)


PARAMS = {
    "start": "2026-01-27T06:00:00",
    "end": "2026-04-28T17:00:00",  # 91 days and a few hours: two whole months inside
}


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York"])
@pytest.mark.parametrize("interval", ["cumulative", "month", "day"])
@pytest.mark.parametrize(
    "group_by", ["line_item,country", "line_item,device_type", "line_item,os,browser"]
)
def test_months_with_days_and_hours_at_the_edges_equal_days_and_hours(
    engine: Engine, timezone: str, interval: str, group_by: str
) -> None:
    request = parse_report_request(
        {**PARAMS, "timezone": timezone, "interval": interval, "group_by": group_by}
    )
    with_months = formats.to_dict(run_report(engine, request))
    reference = ReportEngine(DaysAndHoursOnly(SqlRollupReads(engine))).run(request)
    assert with_months == formats.to_dict(reference)
    rows = with_months["rows"]
    assert isinstance(rows, list) and len(rows) > 3  # something was counted


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York"])
def test_filtered_by_line_item_and_country_equal_days_and_hours(
    engine: Engine, timezone: str
) -> None:
    request = parse_report_request(
        {
            "start": "2026-02-01",
            "end": "2026-04-01",
            "timezone": timezone,
            "interval": "month",
            "group_by": "country",
            "line_item_id": "1,3",
            "country": "US,unknown",
        }
    )
    with_months = formats.to_dict(run_report(engine, request))
    reference = ReportEngine(DaysAndHoursOnly(SqlRollupReads(engine))).run(request)
    assert with_months == formats.to_dict(reference)


def test_whole_utc_months_are_read_as_months_with_signed_edges() -> None:
    def plan(timezone: str, interval: str) -> tuple[list[datetime], Terms, int]:
        request = parse_report_request({**PARAMS, "timezone": timezone, "interval": interval})
        sources = plan_sources(plan_buckets(request))
        return sorted(sources.month_terms), sources.day_terms, len(sources.hour_terms)

    def day(month: int, number: int) -> datetime:
        return datetime(2026, month, number, tzinfo=UTC)

    february, march, april = day(2, 1), day(3, 1), day(4, 1)
    # UTC, cumulative: February to April as months, less April 29 and 30; January 27 to 31;
    # hours at the edges (January 27 less 6 hours, April 28 less the 7 after 17:00).
    months, days, hours = plan("UTC", "cumulative")
    assert (months, hours) == ([february, march, april], 6 + 7)
    assert days == {
        **{day(1, n): [(0, 1)] for n in range(27, 32)},
        day(4, 29): [(0, -1)],
        day(4, 30): [(0, -1)],
    }
    # By month: one month per whole month, April less two days; January as its days.
    months, days, hours = plan("UTC", "month")
    assert months == [february, march, april] and len(days) == 7
    # A New York month runs from 05:00 UTC (04:00 in summer): the UTC month, less its first
    # hours, plus the next month's first hours (as a New York day is read from a UTC day).
    months, _, edge_hours = plan("America/New_York", "month")
    assert months == [february, march, april]
    # January 27 before 06:00 local (11:00 UTC); the first 5, 5 and 4 hours (UTC) of February,
    # March and April 1, each adding to one bucket and taken from the next; April 28 after
    # 17:00 local (21:00 UTC).
    assert edge_hours == 11 + 5 + 5 + 4 + 3
    assert plan("America/New_York", "cumulative")[0] == [february, march, april]
    # Days never hold a whole month.
    assert plan("UTC", "day")[0] == plan("America/New_York", "day")[0] == []


def test_tables_without_months_read_the_plan_without_months() -> None:
    """The months expanded to days, what cancels left out, are the days alone."""
    request = parse_report_request({**PARAMS, "interval": "cumulative"})
    sources = plan_sources(plan_buckets(request))
    days = months_as_days(sources.month_terms, sources.day_terms)
    first, end = datetime(2026, 1, 27, tzinfo=UTC), datetime(2026, 4, 29, tzinfo=UTC)
    assert days == {first + timedelta(days=n): [(0, 1)] for n in range((end - first).days)}


def test_the_monthly_rows_sum_the_daily_rows(engine: Engine) -> None:
    for monthly, daily in (
        (t.rollup_geo_line_item_monthly, t.rollup_geo_line_item_daily),
        (t.rollup_device_line_item_monthly, t.rollup_device_line_item_daily),
    ):
        with engine.connect() as conn:
            months = conn.execute(select(func.count()).select_from(monthly)).scalar_one()
            sums = [
                conn.execute(select(func.sum(table.c[name]))).scalar_one()
                for table in (monthly, daily)
                for name in t.ROLLUP_SUMS[:5]
            ]
        assert months >= 4 * len(LINE_ITEMS)  # January to April
        assert sums[:5] == sums[5:]
