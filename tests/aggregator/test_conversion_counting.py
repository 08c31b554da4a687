"""The aggregator counts attributed conversions: once per order id of a pixel, as its
``min_minutes_per_conversion`` allows per click, in the transaction of the log positions, so a
batch read again gets the verdicts it got the first time (in the rollups and in the archive);
two aggregators counting one order at the same time count it once. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.conversion_verdicts import (
    apply_verdicts,
    conversion_candidates,
    judge,
)
from adtrack.aggregator.rollup import fold_table
from adtrack.aggregator.runner import Aggregator
from adtrack.domain.events import Event
from adtrack.services.raw_event_columns import events_to_table
from tests.support.collector import Catalogue
from tests.support.events import AN_IMPRESSION

MINUTE = 60_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00Z


def conversion(
    event_id: str,
    pixel: int,
    *,
    minute: int = 0,
    order_id: str | None = None,
    click: str | None = "click-1",
    attribution: str | None = "post_click",
    revenue: int = 10_000_000,
) -> Event:
    return AN_IMPRESSION._replace(
        event_id=event_id,
        ts=T0 + minute * MINUTE,
        imp_type=11,
        tracker_id=7,
        line_item_id=3,
        publisher_id=4,
        placement_id=5,
        media_cost_micros=0,
        booked_revenue_micros=revenue,
        cachebuster=None,
        conversion_pixel_id=pixel,
        order_id=order_id,
        attribution=attribution,
        attribution_reason=None if attribution else "forged",
        source_event_id=click,
        source_ts=T0 - MINUTE,
    )


def pixels(engine: Engine) -> dict[str, int]:
    cat = Catalogue(engine)
    advertiser = cat.advertiser()
    return {
        "once": cat.conversion_pixel(advertiser),  # min_minutes null: one per click
        "every": cat.conversion_pixel(advertiser, min_minutes_per_conversion=0),
        "ten": cat.conversion_pixel(advertiser, min_minutes_per_conversion=10),
    }


def counted(engine: Engine) -> tuple[int, int, int]:
    r = t.rollup_hourly.c
    query = select(
        func.coalesce(func.sum(r.conversions), 0),
        func.coalesce(func.sum(r.post_click_conversions), 0),
        func.coalesce(func.sum(r.conversion_revenue_micros), 0),
    )
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return int(row[0]), int(row[1]), int(row[2])


def by_pixel(engine: Engine) -> dict[int, tuple[int, int, int]]:
    """Conversions, post-click conversions and revenue per pixel in the conversion pixel
    rollups; the hourly and the daily tables hold the same."""
    out = []
    for table in (t.rollup_conversion_pixel_hourly, t.rollup_conversion_pixel_daily):
        r = table.c
        query = select(
            r.conversion_pixel_id,
            func.sum(r.conversions),
            func.sum(r.post_click_conversions),
            func.sum(r.conversion_revenue_micros),
        ).group_by(r.conversion_pixel_id)
        with engine.connect() as conn:
            out.append(
                {
                    int(row[0]): (int(row[1]), int(row[2]), int(row[3]))
                    for row in conn.execute(query)
                }
            )
    assert out[0] == out[1]
    return out[0]


def archived(root: Path) -> dict[str, tuple[Any, Any]]:
    """Event id -> (attribution, reason) of every conversion in the archive's files."""
    out: dict[str, tuple[Any, Any]] = {}
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path)
        for row in table.select(["event_id", "attribution", "attribution_reason"]).to_pylist():
            assert row["event_id"] not in out or out[row["event_id"]] == (
                row["attribution"],
                row["attribution_reason"],
            )
            out[row["event_id"]] = (row["attribution"], row["attribution_reason"])
    return out


def run_log(
    engine: Engine, log: Path, archive: Path, batches: list[list[Event]], *, reread: bool = False
) -> None:
    async def go() -> None:
        writer = LocalEventLogWriter(log, fsync="never")
        for batch in batches:
            await writer.append([e.to_bytes() for e in batch])
        await writer.close()
        aggregator = Aggregator(
            LocalEventLogReader(log, consumer="agg"),
            SqlRollupSink(engine),
            archive=ParquetRawEventArchive(archive),
        )
        while await aggregator.run_once(max_records=3):
            pass
        if reread:  # from the start of the log again: every batch is one committed before
            await aggregator.reset()
            while await aggregator.run_once(max_records=2):
                pass

    asyncio.run(go())


def test_orders_and_min_minutes_decide_what_counts(engine: Engine, tmp_path: Path) -> None:
    p = pixels(engine)
    events = [
        conversion("a", p["once"], order_id="o-1", click="k1"),
        conversion("b", p["once"], order_id="o-1", click="k2", minute=1),  # same order
        conversion("c", p["once"], click="k1", minute=2),  # the click counted one already
        conversion("d", p["once"], order_id="o-1", click="k3", minute=3, attribution=None),
        conversion("e", p["every"], order_id="o-1", click="k1", minute=4),  # another pixel
        conversion("f", p["every"], click="k1", minute=5),
        conversion("g", p["every"], order_id="o-1", click="k9", minute=6),  # its order again
        conversion("h", p["ten"], click="k1", minute=0),
        conversion("i", p["ten"], click="k1", minute=9),  # 9 minutes after h
        conversion("j", p["ten"], click="k1", minute=10),  # 10 after h
        conversion("k", p["ten"], click="k2", minute=1),  # another click
    ]
    archive = tmp_path / "archive"
    run_log(engine, tmp_path / "log", archive, [events[:4], events[4:]])
    verdicts = archived(archive)
    assert verdicts == {
        "a": ("post_click", None),
        "b": (None, "duplicate_order"),
        "c": (None, "too_soon"),
        "d": (None, "forged"),  # unattributed by the collector: kept as it was
        "e": ("post_click", None),
        "f": ("post_click", None),
        "g": (None, "duplicate_order"),
        "h": ("post_click", None),
        "i": (None, "too_soon"),
        "j": ("post_click", None),
        "k": ("post_click", None),
    }
    assert counted(engine) == (6, 6, 6 * 10_000_000)
    # by pixel, the same conversions: a; e and f; h, j and k
    assert by_pixel(engine) == {
        p["once"]: (1, 1, 10_000_000),
        p["every"]: (2, 2, 20_000_000),
        p["ten"]: (3, 3, 30_000_000),
    }


def test_a_batch_read_again_keeps_its_verdicts(engine: Engine, tmp_path: Path) -> None:
    p = pixels(engine)
    events = [
        conversion("a", p["once"], order_id="o-1", click="k1"),
        conversion("b", p["once"], order_id="o-1", click="k2", minute=1),
        conversion("c", p["once"], click="k1", minute=2),
        conversion("d", p["every"], click="k1", minute=3),
    ]
    first = tmp_path / "first"
    run_log(engine, tmp_path / "log", first, [events[:2], events[2:]])
    before = (counted(engine), archived(first), by_pixel(engine))
    # read from the start again: the batches are refused by position, their archive copies
    # rewritten with the same verdicts (not "duplicate_order" for "a", whose order is counted)
    run_log(engine, tmp_path / "log", first, [], reread=True)
    assert (counted(engine), archived(first), by_pixel(engine)) == before
    assert before[2] == {p["once"]: (1, 1, 10_000_000), p["every"]: (1, 1, 10_000_000)}
    assert before[0] == (2, 2, 20_000_000)
    assert before[1]["a"] == ("post_click", None) and before[1]["b"][1] == "duplicate_order"


def test_two_aggregators_counting_one_order_at_once_count_it_once(engine: Engine) -> None:
    p = pixels(engine)
    sink = SqlRollupSink(engine)
    one = events_to_table([conversion("a", p["once"], order_id="o-7", click="k1")])
    two = events_to_table([conversion("b", p["once"], order_id="o-7", click="k2")])
    # both read the history before either commits (two partitions, two aggregators)
    first = judge(conversion_candidates(one), sink.conversion_history(conversion_candidates(one)))
    second = judge(conversion_candidates(two), sink.conversion_history(conversion_candidates(two)))
    assert first.reasons == {"a": None} and second.reasons == {"b": None}
    sink.write(fold_table(one), starts={}, positions={"p1": 1}, conversions=first)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        sink.write(fold_table(two), starts={}, positions={"p2": 1}, conversions=second)
    assert counted(engine) == (1, 1, 10_000_000)
    assert sink.load_checkpoints() == {"p1": 1}  # the failed batch wrote nothing
    # decided again (what the aggregator does with a batch whose commit failed)
    again = judge(conversion_candidates(two), sink.conversion_history(conversion_candidates(two)))
    assert again.reasons == {"b": "duplicate_order"}
    marked = apply_verdicts(two, again.reasons)
    sink.write(fold_table(marked), starts={}, positions={"p2": 1}, conversions=again)
    assert counted(engine) == (1, 1, 10_000_000)


def test_a_conversion_of_a_pixel_gone_from_the_catalogue_counts_once_per_click(
    engine: Engine,
) -> None:
    sink = SqlRollupSink(engine)
    events = [conversion("a", 999, click="k1"), conversion("b", 999, click="k1", minute=1)]
    table = events_to_table(events)
    verdicts = judge(
        conversion_candidates(table), sink.conversion_history(conversion_candidates(table))
    )
    assert verdicts.reasons == {"a": None, "b": "too_soon"}
    marked = apply_verdicts(table, verdicts.reasons)
    assert marked["attribution"].to_pylist() == ["post_click", None]
    assert marked["attribution_reason"].to_pylist() == [None, "too_soon"]
