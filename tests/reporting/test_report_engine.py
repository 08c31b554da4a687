"""Report numbers equal the sums of the raw events they come from (property tests), on SQLite
and PostgreSQL, across DST changes, for every interval and any grouping or filter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.domain.errors import ValidationError
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.plan import Bucket, plan_sources
from adtrack.reporting.request import (
    CONVERSION_PIXEL,
    DIMENSIONS,
    Interval,
    parse_report_request,
)
from adtrack.reporting.time_grid import DAY, HOUR
from adtrack.services.ports import PositionConflict
from tests.support.reporting import (
    BACKENDS,
    NAMES,
    TRACKERS,
    RawEvent,
    clear_reporting_tables,
    load_rollups,
    migrated_engine,
    run_report,
    to_event,
)


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("reports")) as eng:
        yield eng


# Windows that contain the 2026 DST changes of New York (Mar 8, Nov 1) and Berlin (Mar 29, Oct 25).
SPRING = datetime(2026, 3, 6, tzinfo=UTC)
AUTUMN = datetime(2026, 10, 23, tzinfo=UTC)
SPAN = timedelta(days=26)
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Kolkata"]
# The catalogue dimensions (the audience ones have their own tests: test_audience_*.py; the
# conversion pixel too: test_conversion_pixel_reports.py).
CATALOGUE_DIMENSIONS = [
    name for name, dim in DIMENSIONS.items() if dim.audience is None and name != CONVERSION_PIXEL
]


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[datetime, list[RawEvent]]:
    base = draw(st.sampled_from([SPRING, AUTUMN]))
    n = draw(st.integers(min_value=0, max_value=60))
    events = []
    for _ in range(n):
        seconds = draw(st.integers(min_value=0, max_value=int(SPAN.total_seconds()) - 1))
        events.append(
            RawEvent(
                ts=base + timedelta(seconds=seconds, microseconds=draw(st.integers(0, 999_999))),
                tracker=draw(st.sampled_from(TRACKERS)),
                media_cost_micros=draw(st.integers(min_value=0, max_value=999_999_999_999)),
                booked_revenue_micros=draw(st.integers(min_value=0, max_value=50_000_000)),
                invalid=draw(st.booleans()),
            )
        )
    return base, events


@st.composite
def report_params(draw: st.DrawFn, base: datetime) -> dict[str, object]:
    tz = draw(st.sampled_from(ZONES))
    first = (base - timedelta(days=1)).date()
    start_day = first + timedelta(days=draw(st.integers(0, 10)))
    length = draw(st.integers(1, 20))
    start: object = start_day.isoformat()
    end: object = (start_day + timedelta(days=length)).isoformat()
    if draw(st.booleans()):  # a datetime window on whole local hours
        start = f"{start_day.isoformat()}T{draw(st.integers(0, 23)):02d}:00"
    interval = draw(st.sampled_from(list(Interval)))
    if interval is Interval.HOUR:
        end = (start_day + timedelta(days=min(length, 4))).isoformat()
    group_by = draw(st.lists(st.sampled_from(CATALOGUE_DIMENSIONS), unique=True, max_size=3))
    params: dict[str, object] = {
        "start": start,
        "end": end,
        "interval": interval.value,
        "timezone": tz,
        "group_by": ",".join(group_by),
    }
    for name in draw(st.lists(st.sampled_from(CATALOGUE_DIMENSIONS), unique=True, max_size=2)):
        ids = sorted({tr.value(name) for tr in TRACKERS})
        params[DIMENSIONS[name].column] = draw(
            st.lists(st.sampled_from(ids), min_size=1, unique=True)
        )
    return params


def expected_from_events(
    events: list[RawEvent], params: dict[str, object]
) -> dict[tuple[object, tuple[int, ...]], Counters]:
    """An independent computation: each event's UTC hour, in [start, end), its local bucket."""
    request = parse_report_request(params)
    tz = ZoneInfo(request.timezone)
    sums: dict[tuple[object, tuple[int, ...]], list[int]] = {}
    for ev in events:
        hour = ev.ts.replace(minute=0, second=0, microsecond=0)
        if not (request.start <= hour < request.end):
            continue
        tr = ev.tracker
        values = {name: tr.value(name) for name in CATALOGUE_DIMENSIONS}
        if any(values[name] not in ids for name, ids in request.filters.items()):
            continue
        local = hour.astimezone(tz)
        bucket: object
        if request.interval is Interval.HOUR:
            bucket = hour
        elif request.interval is Interval.DAY:
            bucket = local.date()
        elif request.interval is Interval.MONTH:
            bucket = (local.year, local.month)
        else:
            bucket = None
        key = (bucket, tuple(values[name] for name in request.group_by))
        slot = sums.setdefault(key, [0] * 6)
        if ev.invalid:
            slot[2 if tr.imp_type == 9 else 3] += 1
        else:
            slot[0 if tr.imp_type == 9 else 1] += 1
            slot[4] += ev.media_cost_micros
            slot[5] += ev.booked_revenue_micros
    return {k: Counters.of(v) for k, v in sums.items()}


def actual_from_report(engine: Engine, params: dict[str, object]):  # type: ignore[no-untyped-def]
    request = parse_report_request(params)
    report = run_report(engine, request)
    out: dict[tuple[object, tuple[int, ...]], Counters] = {}
    for row in report.rows:
        start = row.interval_start
        bucket: object
        if request.interval is Interval.HOUR:
            bucket = start.astimezone(UTC)
        elif request.interval is Interval.DAY:
            bucket = start.date()
        elif request.interval is Interval.MONTH:
            assert start.day == 1 and start.hour == 0
            bucket = (start.year, start.month)
        else:
            bucket = None
        key = (bucket, tuple(dv.id for dv in row.dimensions))
        assert key not in out, "each bucket and group appears once"
        out[key] = row.counters
        for dv in row.dimensions:
            if dv.dimension == "imp_type":
                assert dv.label == ("9 External Impression" if dv.id == 9 else "10 External Click")
            elif dv.id:
                assert dv.label == NAMES[dv.dimension][dv.id]
            else:
                assert dv.label is None
    return report, out


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), stream=event_streams())
def test_report_equals_sum_of_raw_events(
    engine: Engine, data: st.DataObject, stream: tuple[datetime, list[RawEvent]]
) -> None:
    base, events = stream
    load_rollups(engine, events)
    params = data.draw(report_params(base))
    expected = expected_from_events(events, params)
    report, actual = actual_from_report(engine, params)
    assert actual == expected
    totals = [0] * 6
    for counters in expected.values():
        for i, v in enumerate(
            (
                counters.imps,
                counters.clicks,
                counters.invalid_imps,
                counters.invalid_clicks,
                counters.media_cost_micros,
                counters.booked_revenue_micros,
            )
        ):
            totals[i] += v
    assert report.totals == Counters.of(totals)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), stream=event_streams())
def test_report_equals_raw_events_written_by_the_aggregator(
    engine: Engine, data: st.DataObject, stream: tuple[datetime, list[RawEvent]]
) -> None:
    """The same property through the aggregator's real write path (log positions, hourly and
    daily rollups; a part delivered again adds nothing)."""
    base, events = stream
    clear_reporting_tables(engine)
    batch = [to_event(ev, f"ev-{i}") for i, ev in enumerate(events)]
    sink = SqlRollupSink(engine)
    half = len(batch) // 2
    sink.write(fold(batch[:half]), starts={}, positions={"log": half})
    sink.write(fold(batch[half:]), starts={"log": half}, positions={"log": len(batch)})
    if half:
        with pytest.raises(PositionConflict):  # the first part delivered again
            sink.write(fold(batch[:half]), starts={"log": 0}, positions={"log": half})
    params = data.draw(report_params(base))
    _, actual = actual_from_report(engine, params)
    assert actual == expected_from_events(events, params)


def test_rows_are_ordered_by_time_then_ids(engine: Engine) -> None:
    events = [
        RawEvent(SPRING + timedelta(hours=h), tr, 1000, 2000, False)
        for h in (30, 2, 55)
        for tr in reversed(TRACKERS)
    ]
    load_rollups(engine, events)
    report = run_report(
        engine,
        parse_report_request(
            {"start": "2026-03-06", "end": "2026-03-09", "group_by": "tracker,imp_type"}
        ),
    )
    keys = [(r.interval_start, tuple(d.id for d in r.dimensions)) for r in report.rows]
    assert keys == sorted(keys)
    assert [k[0].date() for k in keys[:: len(TRACKERS)]] == [
        date(2026, 3, 6),
        date(2026, 3, 7),
        date(2026, 3, 8),
    ]


# ---------------------------------------------------------------------------------------------
# The decomposition into UTC days and hours (pure)
# ---------------------------------------------------------------------------------------------


@given(
    start_hours=st.integers(0, 24 * 60),
    lengths=st.lists(st.integers(1, 24 * 80), min_size=1, max_size=6),
)
def test_signed_months_days_and_hours_cover_each_bucket_exactly(
    start_hours: int, lengths: list[int]
) -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    buckets = []
    at = origin + timedelta(hours=start_hours)
    for n in lengths:
        buckets.append(Bucket(at, at, at + timedelta(hours=n)))
        at += timedelta(hours=n)
    plan = plan_sources(buckets)
    coverage: dict[int, dict[datetime, int]] = {i: {} for i in range(len(buckets))}
    for month, terms in plan.month_terms.items():
        for index, sign in terms:
            hour = month
            while hour.month == month.month:
                coverage[index][hour] = coverage[index].get(hour, 0) + sign
                hour += HOUR
    for day, terms in plan.day_terms.items():
        for index, sign in terms:
            for h in range(24):
                hour = day + timedelta(hours=h)
                coverage[index][hour] = coverage[index].get(hour, 0) + sign
    for hour, terms in plan.hour_terms.items():
        for index, sign in terms:
            coverage[index][hour] = coverage[index].get(hour, 0) + sign
    for i, bucket in enumerate(buckets):
        counted = {h for h, n in coverage[i].items() if n}
        assert all(n in (0, 1) for n in coverage[i].values())
        expected = set()
        hour = bucket.utc_start
        while hour < bucket.utc_end:
            expected.add(hour)
            hour += HOUR
        assert counted == expected


def test_local_days_read_few_hourly_rows() -> None:
    # A New York day: one UTC day plus/minus its 4-5 edge hours, not 24 hours.
    request = parse_report_request(
        {"start": "2026-01-05", "end": "2026-01-06", "timezone": "America/New_York"}
    )
    from adtrack.reporting.plan import plan_buckets

    plan = plan_sources(plan_buckets(request))
    assert list(plan.day_terms) == [datetime(2026, 1, 5, tzinfo=UTC)]
    assert len(plan.hour_terms) == 10
    # A UTC day is one daily row per key and no hourly ones.
    utc = plan_sources(
        plan_buckets(parse_report_request({"start": "2026-01-05", "end": "2026-01-06"}))
    )
    assert list(utc.day_terms) == [datetime(2026, 1, 5, tzinfo=UTC)] and not utc.hour_terms
    assert timedelta(days=1) == DAY


# ---------------------------------------------------------------------------------------------
# Validation names the field
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "2026-01-02"}, "start"),
        ({"start": "2026-01-02"}, "end"),
        ({"start": "yesterday-ish", "end": "2026-01-02"}, "start"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ({"start": "2026-01-01", "end": "2026-01-02", "timezone": "Mars/Olympus"}, "timezone"),
        ({"start": "2026-01-01", "end": "2026-01-02", "interval": "week"}, "interval"),
        ({"start": "2026-01-01", "end": "2026-01-02", "group_by": "creative"}, "group_by"),
        ({"start": "2026-01-01", "end": "2026-01-02", "metrics": "imps,reach"}, "metrics"),
        ({"start": "2026-01-01", "end": "2026-01-02", "line_item_id": "1,x"}, "line_item_id"),
        ({"start": "2026-01-01", "end": "2026-06-01", "interval": "hour"}, "interval"),
        ({"start": "2000-01-01", "end": "2026-06-01"}, "end"),
        ({"range": "last_year"}, "range"),
        ({"range": "yesterday", "start": "2026-01-01"}, "range"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_report_request(params)
    assert info.value.field == field


def test_relative_ranges_follow_the_report_timezone() -> None:
    now = datetime(2026, 3, 8, 3, 30, tzinfo=UTC)  # still March 7 in New York
    req = parse_report_request({"range": "yesterday", "timezone": "America/New_York"}, now=now)
    ny = ZoneInfo("America/New_York")
    assert req.start == datetime(2026, 3, 6, tzinfo=ny)
    assert req.end == datetime(2026, 3, 7, tzinfo=ny)
    last_month = parse_report_request({"range": "last_month"}, now=now)
    assert (last_month.start.date(), last_month.end.date()) == (date(2026, 2, 1), date(2026, 3, 1))


def test_filters_accept_lists_and_comma_text() -> None:
    a = parse_report_request({"start": "2026-01-01", "end": "2026-01-02", "tracker_id": "3,1"})
    b = parse_report_request({"start": "2026-01-01", "end": "2026-01-02", "tracker_id": ["1", "3"]})
    assert a.filters == b.filters == {"tracker": (1, 3)}
