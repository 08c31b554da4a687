"""The aggregator: event log -> hourly/daily rollups + log positions, on SQLite and
PostgreSQL. Exactly once by log position (replays, redeliveries and a second aggregator never
double-count), atomic (a failed batch leaves nothing behind and is retried), resumable
(restarts continue after the last commit), and quick (events show up in the rollups within 2
seconds)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.aggregator.runner import Aggregator
from adtrack.domain.events import (
    INVALID_BOT,
    INVALID_PREFETCH,
    RECORD_FORMAT,
    VIEW_MEASURED,
    VIEW_VIEWABLE,
    Event,
    MalformedEvent,
)
from adtrack.services.ports import InvalidKey, PositionConflict, RollupKey
from tests.support import postgres
from tests.support.events import AN_IMPRESSION, record_with

# The audience rollups: (table, the key columns after the time), network and line-item levels.
AUDIENCE_TABLES = (
    t.rollup_geo_hourly,
    t.rollup_geo_daily,
    t.rollup_geo_line_item_hourly,
    t.rollup_geo_line_item_daily,
    t.rollup_geo_line_item_monthly,
    t.rollup_device_hourly,
    t.rollup_device_daily,
    t.rollup_device_line_item_hourly,
    t.rollup_device_line_item_daily,
    t.rollup_device_line_item_monthly,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
HOUR_US = 3_600_000_000

# (tracker, imp_type, advertiser, line item, publisher, placement, payment rule)
TRACKERS = [
    (1, 9, 10, 100, 20, 200, 300),
    (2, 10, 10, 100, 20, 200, None),
    (3, 9, 11, 101, 21, None, 301),
    (4, 10, 11, 102, 21, None, None),
]


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated database per backend for the module (hypothesis runs many examples)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('agg') / 'adtrack.db'}"
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    with postgres.temporary_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def engine(store: Engine) -> Engine:
    clear(store)
    return store


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (
            t.raw_event_files,
            t.rollup_hourly,
            t.rollup_daily,
            t.rollup_invalid_hourly,
            *AUDIENCE_TABLES,
            t.eventlog_checkpoints,
            t.view_beacons_seen,
        ):
            conn.execute(table.delete())


def make_event(
    tracker: int = 0,
    at: datetime = T0,
    *,
    cost: int = 1_000,
    revenue: int = 2_500,
    invalid_reason: str | None = None,
    event_id: str | None = None,
    audience: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
) -> Event:
    tid, imp_type, adv, li, pub, plc, rule = TRACKERS[tracker]
    return AN_IMPRESSION._replace(
        event_id=event_id or uuid.uuid4().hex,
        ts=int((at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)),
        imp_type=imp_type,
        tracker_id=tid,
        advertiser_id=adv,
        line_item_id=li,
        publisher_id=pub,
        placement_id=plc,
        payment_rule_id=rule,
        media_cost_micros=cost,
        booked_revenue_micros=revenue,
        ip="192.0.2.0",
        user_agent="Mozilla/5.0",
        referrer="https://news.example/",
        invalid=invalid_reason is not None,
        invalid_reason=invalid_reason,
        country=audience[0],
        device_type=audience[1],
        os=audience[2],
        browser=audience[3],
    )


def as_utc(value: datetime) -> datetime:
    """SQLite gives naive UTC datetimes back, PostgreSQL aware ones in the session's zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every rollup row and the committed positions, comparable across runs."""
    with engine.connect() as conn:
        return {
            "hourly": sorted(tuple(r) for r in conn.execute(select(t.rollup_hourly))),
            "daily": sorted(tuple(r) for r in conn.execute(select(t.rollup_daily))),
            "invalid": sorted(tuple(r) for r in conn.execute(select(t.rollup_invalid_hourly))),
            **{
                table.name: sorted(tuple(r) for r in conn.execute(select(table)))
                for table in AUDIENCE_TABLES
            },
            "positions": SqlRollupSink(engine).load_checkpoints(),
        }


# (the conversions' sums are the conversion tests' business)
HIT_SUMS = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "media_cost_micros",
    "booked_revenue_micros",
    "viewable_imps",
    "view_measured_imps",
)


def totals(engine: Engine) -> tuple[int, ...]:
    """The impressions', clicks' and views' sums over every hourly rollup row."""
    r = t.rollup_hourly
    sums = [func.coalesce(func.sum(r.c[c]), 0) for c in HIT_SUMS]
    with engine.connect() as conn:
        return tuple(int(v) for v in conn.execute(select(*sums)).one())


async def write_log(directory: Path, batches: list[list[Event]], **options: Any) -> None:
    writer = LocalEventLogWriter(directory, fsync="never", **options)
    for batch in batches:
        await writer.append([e.to_bytes() for e in batch])
    await writer.close()


async def drain(aggregator: Aggregator, max_records: int = 5000) -> int:
    total = 0
    while handled := await aggregator.run_once(max_records):
        total += handled
    return total


# --- the pure fold ---------------------------------------------------------------------------


def test_fold_counts_valid_traffic_and_invalid_traffic_apart() -> None:
    later = T0 + timedelta(minutes=90)
    delta = fold(
        [
            make_event(0, cost=1_000, revenue=2_000),
            make_event(0, cost=3_000, revenue=4_000),
            make_event(0, invalid_reason=INVALID_BOT, cost=99, revenue=99),
            make_event(1, cost=500, revenue=0),
            make_event(1, later, invalid_reason=INVALID_PREFETCH),
        ]
    )
    hour = int(T0.timestamp()) // 3600
    imp_key = RollupKey(hour, 9, 1, 10, 100, 20, 200, 300)
    click_key = RollupKey(hour, 10, 2, 10, 100, 20, 200, 0)  # no payment rule -> 0
    later_click_key = RollupKey(hour + 1, 10, 2, 10, 100, 20, 200, 0)
    assert set(delta.rows) == {imp_key, click_key, later_click_key}
    imps = delta.rows[imp_key]
    assert (imps.imps, imps.clicks, imps.invalid_imps, imps.invalid_clicks) == (2, 0, 1, 0)
    assert (imps.media_cost_micros, imps.booked_revenue_micros) == (4_000, 6_000)  # valid only
    clicks = delta.rows[click_key]
    assert (clicks.clicks, clicks.media_cost_micros) == (1, 500)
    assert delta.rows[later_click_key].invalid_clicks == 1
    assert delta.invalid == {
        InvalidKey(hour, 9, 1, INVALID_BOT): 1,
        InvalidKey(hour + 1, 10, 2, INVALID_PREFETCH): 1,
    }


def test_records_are_checked_before_they_reach_the_database() -> None:
    good = make_event(0)
    assert Event.from_bytes(good.to_bytes()) == good
    for broken in (
        b"not json",
        b"[]",
        record_with(good, event_id=""),
        record_with(good, event_id="x" * 41),
        record_with(good, tracker_id="7"),
        record_with(good, imp_type=12),
        record_with(good, media_cost_micros=2**63),
        record_with(good, media_cost_micros=2**70),
        record_with(good, user_agent=5),
        record_with(good, ts=-(2**62)),  # no date holds its hour: would stop the aggregator
        record_with(good, ts=2**62),
        good.to_bytes()[:-1] + b",null]",  # a field too many
        b"[%d" % (RECORD_FORMAT + 1) + good.to_bytes()[2:],  # a later record format
    ):
        with pytest.raises(MalformedEvent):
            Event.from_bytes(broken)
    long = Event.from_bytes(record_with(good, cachebuster="9" * 400, ip="a\x00b"))
    assert len(long.cachebuster or "") == 255 and long.ip == "ab"  # cut to fit, never stuck


# --- the SQL sink ----------------------------------------------------------------------------


def test_sink_writes_hourly_daily_invalid_and_commits_a_log_range_once(engine: Engine) -> None:
    sink = SqlRollupSink(engine)
    late = T0 + timedelta(hours=2, minutes=30)  # next UTC day (T0 is 22:00)
    batch = [
        make_event(0),
        make_event(0, late, cost=7, revenue=8),
        make_event(2, invalid_reason=INVALID_BOT),
        make_event(3, cost=40, revenue=50),
    ]
    sink.write(fold(batch[:2]), starts={}, positions={"seg-a": 50})
    sink.write(fold(batch[2:]), starts={"seg-a": 50}, positions={"seg-a": 100})
    before = snapshot(engine)
    # The same ranges again (a replay, a redelivery, a second aggregator): refused, no change.
    for starts, positions in (({}, {"seg-a": 50}), ({"seg-a": 50}, {"seg-a": 100})):
        with pytest.raises(PositionConflict, match="seg-a"):
            sink.write(fold(batch), starts=starts, positions=positions)
    # A batch across two sources commits both or neither.
    with pytest.raises(PositionConflict):
        sink.write(fold(batch), starts={"seg-b": 0, "seg-a": 0}, positions={"seg-a": 9, "seg-b": 9})
    assert snapshot(engine) == before

    assert totals(engine) == (2, 1, 1, 0, 1_000 + 7 + 40, 2_500 + 8 + 50, 0, 0)
    with engine.connect() as conn:
        days = conn.execute(
            select(t.rollup_daily.c.day, func.sum(t.rollup_daily.c.imps)).group_by(
                t.rollup_daily.c.day
            )
        ).all()
        assert sorted((as_utc(d).date(), int(n)) for d, n in days) == [
            (T0.date(), 1),
            (late.date(), 1),
        ]
        invalid = conn.execute(select(t.rollup_invalid_hourly)).all()
        assert [(r.tracker_id, r.reason, r[4]) for r in invalid] == [(3, INVALID_BOT, 1)]  # count
    assert sink.load_checkpoints() == {"seg-a": 100}
    sink.write(
        fold(batch[:1]), starts={"seg-a": 100, "seg-b": 0}, positions={"seg-a": 120, "seg-b": 7}
    )
    assert sink.load_checkpoints() == {"seg-a": 120, "seg-b": 7}


def test_a_failed_transaction_leaves_nothing_and_the_batch_is_retried(
    engine: Engine, tmp_path: Path
) -> None:
    events = [make_event(i % 4) for i in range(40)]
    asyncio.run(write_log(tmp_path, [events[:20], events[20:]]))
    aggregator = Aggregator(
        LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
    )
    # A real failure inside the database, after the positions and the hourly rollups were
    # written in the same transaction: the daily rollups' write is refused.
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_rollup BEFORE INSERT ON rollup_daily "
                    "BEGIN SELECT RAISE(ABORT, 'rollup refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_rollup() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'rollup refused'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_rollup BEFORE INSERT ON rollup_daily "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_rollup()"
                )
            )
    try:
        with pytest.raises(Exception, match="rollup refused"):
            asyncio.run(aggregator.run_once())
        assert snapshot(engine)["positions"] == {} and totals(engine) == (0,) * len(HIT_SUMS)
    finally:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER refuse_rollup"))
            else:
                conn.execute(text("DROP TRIGGER refuse_rollup ON rollup_daily"))
                conn.execute(text("DROP FUNCTION refuse_rollup()"))
    assert asyncio.run(drain(aggregator)) == 40
    assert sum(totals(engine)[:4]) == 40
    assert aggregator.stats.conflicts == 0 and aggregator.stats.records == 40


# --- the aggregator over the local log --------------------------------------------------------


def test_log_to_rollups_with_checkpoints_at_the_end_of_every_segment(
    engine: Engine, tmp_path: Path
) -> None:
    batches = [
        [make_event(i % 4, T0 + timedelta(minutes=7 * i)) for i in range(b, b + 30)]
        for b in range(0, 300, 30)
    ]
    asyncio.run(write_log(tmp_path, batches, segment_bytes=20_000))
    aggregator = Aggregator(
        LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
    )
    assert asyncio.run(drain(aggregator, max_records=70)) == 300
    events = [e for b in batches for e in b]
    imps = sum(1 for e in events if e.imp_type == 9)
    assert totals(engine) == (
        imps,
        300 - imps,
        0,
        0,
        300 * 1_000,
        300 * 2_500,
        0,  # no viewability beacons
        0,
    )
    segments = {p.name: p.stat().st_size for p in tmp_path.glob("*.seg")}
    assert len(segments) > 1
    assert SqlRollupSink(engine).load_checkpoints() == segments


def test_replaying_the_whole_log_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    events = [
        make_event(
            i % 4,
            T0 + timedelta(minutes=13 * i),
            invalid_reason=INVALID_BOT if i % 9 == 0 else None,
        )
        for i in range(500)
    ]
    asyncio.run(write_log(tmp_path, [events[i : i + 25] for i in range(0, 500, 25)]))

    async def scenario() -> None:
        aggregator = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        assert await drain(aggregator) == 500
        before = snapshot(engine)
        await aggregator.reset()  # read the log again from its first byte
        assert await drain(aggregator) == 500  # read again, found committed, dropped
        assert snapshot(engine) == before
        assert aggregator.stats.records == 500 and aggregator.stats.conflicts == 1
        # Also a brand-new reader that starts from nothing (positions not handed over).
        fresh = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        await fresh.reset()
        await drain(fresh)
        assert fresh.stats.records == 0 and fresh.stats.conflicts >= 1
        assert snapshot(engine) == before

    asyncio.run(scenario())


def test_a_restart_resumes_right_after_the_last_commit(engine: Engine, tmp_path: Path) -> None:
    events = [make_event(i % 4) for i in range(200)]
    asyncio.run(write_log(tmp_path, [events[i : i + 10] for i in range(0, 200, 10)]))

    async def scenario() -> None:
        first = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        assert await first.run_once(50) == 50
        assert await first.run_once(50) == 50
        # "Restart": a new reader knows nothing; the positions come from the database.
        second = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        assert await drain(second, 50) == 100
        assert second.stats.conflicts == 0  # resumed, not replayed
        assert sum(totals(engine)[:4]) == 200

    asyncio.run(scenario())


def test_a_malformed_record_is_skipped_without_blocking_the_rest(
    engine: Engine, tmp_path: Path
) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never")
        await writer.append(
            [make_event(0).to_bytes(), b'{"event_id": 5}', make_event(1).to_bytes()]
        )
        await writer.close()
        aggregator = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        assert await drain(aggregator) == 3
        assert aggregator.stats.malformed == 1 and sum(totals(engine)[:4]) == 2

    asyncio.run(scenario())


def test_events_reach_the_rollups_within_two_seconds(engine: Engine, tmp_path: Path) -> None:
    async def scenario() -> list[float]:
        writer = LocalEventLogWriter(tmp_path, fsync="interval")
        aggregator = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"), SqlRollupSink(engine), archive=None
        )
        stop = asyncio.Event()
        task = asyncio.create_task(aggregator.run_forever(stop, poll_interval=0.2))
        lags = []
        try:
            for n in range(1, 6):
                await asyncio.sleep(0.13 * n)  # land at different points of the poll cycle
                appended = time.monotonic()
                await writer.append([make_event(0).to_bytes()])
                while await asyncio.to_thread(lambda: totals(engine)[0]) < n:
                    assert time.monotonic() - appended < 2.0, "not visible within 2 s"
                    await asyncio.sleep(0.01)
                lags.append(time.monotonic() - appended)
        finally:
            stop.set()
            await task
            await writer.close()
        return lags

    lags = asyncio.run(scenario())
    assert max(lags) < 2.0
    print(f"append -> visible in rollups: max {max(lags) * 1000:.0f} ms")


def test_consumed_segments_are_pruned(engine: Engine, tmp_path: Path) -> None:
    batches = [[make_event(i % 4) for i in range(b, b + 20)] for b in range(0, 200, 20)]
    asyncio.run(write_log(tmp_path, batches, segment_bytes=8_000))
    assert len(list(tmp_path.glob("*.seg"))) > 2

    async def scenario() -> None:
        aggregator = Aggregator(
            LocalEventLogReader(tmp_path, consumer="agg"),
            SqlRollupSink(engine),
            archive=None,
            segment_retention_seconds=0,
            prune_every_seconds=0,
        )
        await drain(aggregator)
        await aggregator.run_once()  # a pass with nothing new still prunes
        assert aggregator.stats.pruned_segments > 2

    asyncio.run(scenario())
    remaining = list(tmp_path.glob("*.seg"))
    assert SqlRollupSink(engine).load_checkpoints().keys() <= {p.name for p in remaining}
    assert sum(totals(engine)[:4]) == 200


def test_two_aggregators_on_one_log_count_each_event_once(engine: Engine, tmp_path: Path) -> None:
    events = [make_event(i % 4) for i in range(1000)]
    asyncio.run(write_log(tmp_path, [events[i : i + 50] for i in range(0, 1000, 50)]))

    async def scenario() -> None:
        aggregators = [
            Aggregator(
                LocalEventLogReader(tmp_path, consumer=f"agg{i}"),
                SqlRollupSink(engine),
                archive=None,
            )
            for i in range(2)
        ]
        await asyncio.gather(*(drain(a, 100) for a in aggregators))
        assert sum(a.stats.records for a in aggregators) == 1000

    asyncio.run(scenario())
    assert sum(totals(engine)[:2]) == 1000


# --- property: rollups equal an independent sum ------------------------------------------------

event_strategy = st.builds(
    lambda tracker, minute, cost, revenue, reason, audience: make_event(
        tracker,
        T0 + timedelta(minutes=minute),
        cost=cost,
        revenue=revenue,
        invalid_reason=reason,
        audience=audience,
    ),
    st.integers(0, len(TRACKERS) - 1),
    # from February 28 to a bit more than two days later: across midnights and a month's end
    st.integers(-60 * 24, 60 * 50),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.one_of(st.none(), st.sampled_from([INVALID_BOT, INVALID_PREFETCH, "duplicate_click"])),
    st.tuples(
        st.sampled_from([None, "US", "NL"]),
        st.sampled_from([None, "mobile", "desktop"]),
        st.sampled_from([None, "iOS", "Windows"]),
        st.sampled_from([None, "Mobile Safari", "Chrome"]),
    ),
)


def make_beacon(impression: int, state: str) -> Event:
    """A viewability beacon of impression number ``impression`` (0-5): the same impression is
    always of the same tracker, time, country and device, as its token makes it."""
    return make_event(impression % 2 * 2, T0 + timedelta(minutes=impression * 500))._replace(
        country=("US", "FR", None)[impression % 3],
        device_type=("desktop", "mobile")[impression % 2],
        os=(None, "Android")[impression % 2],
        browser="Chrome",
        media_cost_micros=0,
        booked_revenue_micros=0,
        view_state=state,
        impression_event_id=f"impression-{impression}",
    )


hit_or_beacon_strategy = st.one_of(
    event_strategy,
    st.builds(make_beacon, st.integers(0, 5), st.sampled_from([VIEW_MEASURED, VIEW_VIEWABLE])),
)


VIEWABLE = t.ROLLUP_SUMS.index("viewable_imps")
MEASURED = t.ROLLUP_SUMS.index("view_measured_imps")


def expected_rollups(events: list[Event]) -> dict[str, Any]:
    """An independent, deliberately plain computation of what the tables must hold."""
    # (the other sums, the conversions', stay 0: these events are impressions and clicks)
    hourly: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(t.ROLLUP_SUMS))
    daily: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(t.ROLLUP_SUMS))
    invalid: dict[tuple[Any, ...], int] = defaultdict(int)
    seen: set[tuple[str | None, str]] = set()  # (impression, state) counted
    audience: dict[str, dict[tuple[Any, ...], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0] * len(t.ROLLUP_SUMS))
    )
    for e in events:
        when = datetime.fromtimestamp(e.ts / 1e6, UTC).replace(minute=0, second=0, microsecond=0)
        dims = (
            e.imp_type,
            e.tracker_id,
            e.advertiser_id,
            e.line_item_id,
            e.publisher_id,
            e.placement_id or 0,
            e.payment_rule_id or 0,
        )
        # a beacon counts each state of its impression once (a viewable one also measured),
        # on every row of its impression, and nothing else
        new_states = []
        if e.view_state is not None:
            states = [e.view_state] + ([VIEW_MEASURED] if e.view_state == VIEW_VIEWABLE else [])
            for state in states:
                if (e.impression_event_id, state) not in seen:
                    seen.add((e.impression_event_id, state))
                    new_states.append(state)
        rows = [hourly[(when, *dims)], daily[(when.replace(hour=0), *dims)]]
        if e.view_state is None and e.invalid:
            invalid[(when, e.imp_type, e.tracker_id, e.invalid_reason)] += 1
        line_item = (e.advertiser_id, e.line_item_id)
        geo = (e.country or "",)
        device = (e.device_type or "", e.os or "", e.browser or "")
        for name, key in (
            ("rollup_geo", geo),
            ("rollup_geo_line_item", (*line_item, *geo)),
            ("rollup_device", device),
            ("rollup_device_line_item", (*line_item, *device)),
        ):
            for suffix, bucket in (
                ("hourly", when),
                ("daily", when.replace(hour=0)),
                ("monthly", when.replace(day=1, hour=0)),
            ):
                if suffix == "monthly" and "line_item" not in name:
                    continue  # the network levels keep no months
                rows.append(audience[f"{name}_{suffix}"][(bucket, e.imp_type, *key)])
        for row in rows:
            if e.view_state is not None:
                for state in new_states:
                    row[VIEWABLE if state == VIEW_VIEWABLE else MEASURED] += 1
            elif e.invalid:
                row[2 if e.imp_type == 9 else 3] += 1
            else:
                row[0 if e.imp_type == 9 else 1] += 1
                row[4] += e.media_cost_micros
                row[5] += e.booked_revenue_micros
    return {
        "hourly": sorted((*k, *v) for k, v in hourly.items()),
        "daily": sorted((*k, *v) for k, v in daily.items()),
        "invalid": sorted((*k, v) for k, v in invalid.items()),
        **{
            table.name: sorted((*k, *v) for k, v in audience[table.name].items())
            for table in AUDIENCE_TABLES
        },
    }


def stored_rollups(engine: Engine) -> dict[str, Any]:
    def utc(row: Any) -> tuple[Any, ...]:
        return (as_utc(row[0]), *row[1:])

    with engine.connect() as conn:
        return {
            "hourly": sorted(utc(r) for r in conn.execute(select(t.rollup_hourly))),
            "daily": sorted(utc(r) for r in conn.execute(select(t.rollup_daily))),
            "invalid": sorted(utc(r) for r in conn.execute(select(t.rollup_invalid_hourly))),
            **{
                table.name: sorted(utc(r) for r in conn.execute(select(table)))
                for table in AUDIENCE_TABLES
            },
        }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(hit_or_beacon_strategy, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    replays=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=3),
)
def test_rollups_equal_a_fold_over_the_log(
    store: Engine, events: list[Event], cuts: list[int], replays: list[tuple[int, int]]
) -> None:
    """The log is ``events`` (position = index); it is committed in batches cut anywhere, and
    ranges of it are delivered again after every batch (replays from committed or older
    positions, and ranges that overlap the next batch): the rollups equal one fold over the
    log, and each viewability state of an impression counts once however often its beacon
    comes (a viewable one also counting it measured)."""
    clear(store)
    sink = SqlRollupSink(store, clock=T0.timestamp)
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        sink.write(fold(events[lo:hi]), starts={"log": lo}, positions={"log": hi})
        for start, length in replays:
            start = min(start, hi)  # a replay of what is committed, from any earlier position
            end = start + length
            if start == hi:
                continue  # from the committed position on: that is the next batch, not a replay
            with pytest.raises(PositionConflict):
                sink.write(fold(events[start:end]), starts={"log": start}, positions={"log": end})
    assert stored_rollups(store) == expected_rollups(events)
    assert sink.load_checkpoints() == ({"log": len(events)} if events else {})
