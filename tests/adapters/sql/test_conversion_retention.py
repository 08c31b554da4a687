"""The retention of the aggregator's conversion bookkeeping, on SQLite and PostgreSQL: verdicts
older than ``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS`` go, in batches, with the order ids they
counted; younger ones stay and still decide; an order forgotten counts again. The setting may
not be shorter than the longest window a verdict can decide in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.conversion_retention import SqlConversionBookkeepingRetention
from adtrack.adapters.sql.db import make_engine
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.conversion_verdicts import conversion_candidates, judge
from adtrack.config import Settings
from adtrack.domain.conversion_retention import MIN_CONVERSION_DEDUP_RETENTION_DAYS
from adtrack.domain.events import Event
from adtrack.services.ports import ConversionVerdicts, RollupDelta
from adtrack.services.raw_event_columns import events_to_table
from adtrack.services.retention import purge_conversion_bookkeeping
from tests.support.collector import Catalogue
from tests.support.events import AN_IMPRESSION

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY_MICROS = 86_400_000_000


def conversion(event_id: str, pixel: int, day: int, order_id: str | None, click: str) -> Event:
    ts = int(T0.timestamp()) * 1_000_000 + day * DAY_MICROS
    return AN_IMPRESSION._replace(
        event_id=event_id,
        ts=ts,
        imp_type=11,
        media_cost_micros=0,
        cachebuster=None,
        conversion_pixel_id=pixel,
        order_id=order_id,
        attribution="post_click",
        attribution_reason=None,
        source_event_id=click,
        source_ts=ts - 60_000_000,
    )


def decide(sink: SqlRollupSink, events: list[Event]) -> ConversionVerdicts:
    """The aggregator's verdicts on ``events``, kept as a batch's are."""
    candidates = conversion_candidates(events_to_table(events))
    verdicts = judge(candidates, sink.conversion_history(candidates))
    sink.write(RollupDelta(), starts={}, positions=None, conversions=verdicts)
    return verdicts


def test_old_verdicts_and_their_orders_go_in_batches_and_young_ones_still_decide(
    engine: Engine,
) -> None:
    pixel = Catalogue(engine).conversion_pixel(Catalogue(engine).advertiser())
    sink = SqlRollupSink(engine)
    old = [conversion(f"old-{n}", pixel, n, f"o-{n}", f"k{n}") for n in range(5)]
    young = conversion("young", pixel, 95, "o-young", "k-young")
    refused = conversion("refused", pixel, 1, "o-0", "k-other")  # o-0 again: not counted
    first = decide(sink, [*old, refused, young])
    assert first.reasons["refused"] == "duplicate_order"

    # 100 days after day 5: the day-0..4 conversions (and the refused one of day 1) are past
    deleted = purge_conversion_bookkeeping(
        SqlConversionBookkeepingRetention(engine, batch_rows=2),
        retention_days=100,
        now=T0 + timedelta(days=105),
    )
    assert deleted == 6
    with engine.connect() as conn:
        verdicts = set(conn.execute(select(t.conversion_verdicts.c.event_id)).scalars())
        orders = set(conn.execute(select(t.conversion_orders.c.order_id)).scalars())
    assert (verdicts, orders) == ({"young"}, {"o-young"})

    # an order forgotten counts again; one kept is still a duplicate; the click of a kept
    # verdict has counted its one conversion (min_minutes_per_conversion null)
    again = decide(
        sink,
        [
            conversion("again", pixel, 106, "o-0", "k-new"),
            conversion("twice", pixel, 106, "o-young", "k-new2"),
            conversion("click", pixel, 106, None, "k-young"),
        ],
    )
    assert again.reasons == {"again": None, "twice": "duplicate_order", "click": "too_soon"}
    nothing = SqlConversionBookkeepingRetention(engine, batch_rows=2)
    assert purge_conversion_bookkeeping(nothing, retention_days=100, now=T0) == 0


def test_the_retention_outlives_every_window_a_verdict_decides_in() -> None:
    assert MIN_CONVERSION_DEDUP_RETENTION_DAYS == 91  # 90 days of post-click window, and a day
    base = {"ADTRACK_DATA_DIR": "/nonexistent", "ADTRACK_DATABASE_URL": "sqlite://"}
    assert Settings.from_env(base).conversion_dedup_retention_days == 100
    assert (
        Settings.from_env(
            {**base, "ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS": "91"}
        ).conversion_dedup_retention_days
        == 91
    )
    with pytest.raises(
        ValueError, match="ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS must be at least 91"
    ):
        Settings.from_env({**base, "ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS": "90"})
    with pytest.raises(ValueError, match="ADTRACK_CONVERSION_PURGE_BATCH_ROWS"):
        Settings.from_env({**base, "ADTRACK_CONVERSION_PURGE_BATCH_ROWS": "0"})
    with pytest.raises(ValueError, match="at least 91 days"):
        purge_conversion_bookkeeping(
            SqlConversionBookkeepingRetention(make_engine("sqlite://"), batch_rows=1),
            retention_days=90,
        )
