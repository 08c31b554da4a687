"""Viewability beacons through the fold and the SQL sink, on SQLite and PostgreSQL: each state of
an impression counts once however often (and in however many batches) its beacon comes, a
viewable impression is also measured, impressions without a beacon (pixels) are not measured,
and states of impressions older than the dedup window are not counted and are forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.domain.events import VIEW_MEASURED, VIEW_VIEWABLE, Event
from adtrack.domain.rollup_counters import Counters
from tests.support.events import AN_IMPRESSION

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def impression(event_id: str, at: datetime = NOW) -> Event:
    return AN_IMPRESSION._replace(event_id=event_id, ts=int(at.timestamp() * 1_000_000))


def beacon(of: Event, state: str, event_id: str) -> Event:
    """A beacon as the collector writes it: the impression's time and ids, nothing billed."""
    return of._replace(
        event_id=event_id,
        media_cost_micros=0,
        booked_revenue_micros=0,
        revenue_type="none",
        cachebuster=None,
        view_state=state,
        impression_event_id=of.event_id,
    )


def totals(engine: Engine, table: str = "rollup_hourly") -> Counters:
    rollups = t.metadata.tables[table]
    sums = [func.coalesce(func.sum(rollups.c[name]), 0) for name in t.ROLLUP_SUMS]
    with engine.connect() as conn:
        return Counters(*(int(v) for v in conn.execute(select(*sums)).one()))


def seen_rows(engine: Engine) -> set[tuple[str, str]]:
    c = t.view_beacons_seen.c
    with engine.connect() as conn:
        return {(r[0], r[1]) for r in conn.execute(select(c.impression_event_id, c.view_state))}


def test_repeated_beacons_count_once_in_one_batch_and_across_batches(engine: Engine) -> None:
    sink = SqlRollupSink(engine, clock=NOW.timestamp)
    a, b, pixel = impression("imp-a"), impression("imp-b"), impression("imp-pixel")
    first = [a, b, pixel, beacon(a, VIEW_MEASURED, "m1"), beacon(a, VIEW_MEASURED, "m2")]
    sink.write(fold(first), starts={}, positions={"log": 5})
    # the same beacons again, later in the log, and a viewable one of b
    again = [beacon(a, VIEW_MEASURED, "m3"), beacon(b, VIEW_VIEWABLE, "v1")]
    sink.write(fold(again), starts={"log": 5}, positions={"log": 7})
    sink.write(fold([beacon(b, VIEW_VIEWABLE, "v2")]), starts={"log": 7}, positions={"log": 8})
    counts = totals(engine)
    assert (counts.imps, counts.view_measured_imps, counts.viewable_imps) == (3, 2, 1)
    assert totals(engine, "rollup_daily") == counts
    for audience in (  # the audience rollups count them once too
        "rollup_geo_hourly",
        "rollup_geo_line_item_daily",
        "rollup_device_daily",
        "rollup_device_line_item_hourly",
        "rollup_geo_line_item_monthly",
        "rollup_device_line_item_monthly",
    ):
        assert totals(engine, audience) == counts, audience
    # the beacons add no impressions, money or invalid traffic
    assert counts.media_cost_micros == 3 * AN_IMPRESSION.media_cost_micros
    assert (counts.invalid_imps, counts.clicks) == (0, 0)
    assert counts.viewability_rate is not None and str(counts.viewability_rate) == "0.500000"
    assert counts.view_measurement_rate is not None
    assert str(counts.view_measurement_rate) == "0.666667"  # the pixel is not measured
    assert seen_rows(engine) == {
        ("imp-a", VIEW_MEASURED),
        ("imp-b", VIEW_MEASURED),
        ("imp-b", VIEW_VIEWABLE),
    }


def test_a_beacon_counts_on_its_impressions_rows(engine: Engine) -> None:
    sink = SqlRollupSink(engine, clock=NOW.timestamp)
    earlier = impression("imp-early", NOW - timedelta(hours=5))._replace(
        tracker_id=7, placement_id=3, payment_rule_id=4, country="NL", device_type="tablet"
    )
    sink.write(
        fold([earlier, beacon(earlier, VIEW_VIEWABLE, "v")]), starts={}, positions={"log": 2}
    )
    r = t.rollup_hourly.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.tracker_id, r.placement_id, r.payment_rule_id, r.imps, r.viewable_imps)
        ).all()
    assert [tuple(row) for row in rows] == [(7, 3, 4, 1, 1)]
    g = t.rollup_geo_daily.c
    d = t.rollup_device_hourly.c
    with engine.connect() as conn:
        geo = conn.execute(select(g.country, g.imps, g.viewable_imps)).all()
        devices = conn.execute(select(d.device_type, d.imps, d.view_measured_imps)).all()
    assert [tuple(row) for row in geo] == [("NL", 1, 1)]
    assert [tuple(row) for row in devices] == [("tablet", 1, 1)]


def test_views_of_impressions_past_the_window_are_not_counted_and_forgotten(
    engine: Engine,
) -> None:
    sink = SqlRollupSink(engine, view_dedup_days=8, clock=NOW.timestamp)
    old = impression("imp-old", NOW - timedelta(days=9))
    recent = impression("imp-recent", NOW - timedelta(days=7))
    sink.write(
        fold([beacon(old, VIEW_MEASURED, "o"), beacon(recent, VIEW_MEASURED, "r")]),
        starts={},
        positions={"log": 2},
    )
    assert totals(engine).view_measured_imps == 1
    assert seen_rows(engine) == {("imp-recent", VIEW_MEASURED)}
    # a week later the recent one is old too: its row goes at the next batch with views
    later = SqlRollupSink(engine, view_dedup_days=8, clock=(NOW + timedelta(days=7)).timestamp)
    fresh = impression("imp-fresh", NOW + timedelta(days=7))
    later.write(fold([beacon(fresh, VIEW_MEASURED, "f")]), starts={"log": 2}, positions={"log": 3})
    assert seen_rows(engine) == {("imp-fresh", VIEW_MEASURED)}
    assert totals(engine).view_measured_imps == 2


def test_invalid_beacons_count_nothing(engine: Engine) -> None:
    sink = SqlRollupSink(engine, clock=NOW.timestamp)
    a = impression("imp-a")
    bad = beacon(a, VIEW_VIEWABLE, "x")._replace(invalid=True, invalid_reason="bot")
    sink.write(fold([a, bad]), starts={}, positions={"log": 2})
    counts = totals(engine)
    assert (counts.imps, counts.invalid_imps, counts.view_measured_imps) == (1, 0, 0)
