"""Conversions of two pixels over two advertisers' line items, counted by the aggregator's own
steps (verdicts, fold, sink), for the reports by conversion pixel. Needs the catalogue of
``tests/support/reporting.py`` (``seed_catalogue``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.conversion_verdicts import apply_verdicts, conversion_candidates, judge
from adtrack.aggregator.rollup import fold_table
from adtrack.domain.events import Event
from adtrack.services.raw_event_columns import events_to_table
from tests.support.events import AN_IMPRESSION
from tests.support.reporting import NOW, TRACKERS, TrackerSpec

PIXELS = {1: ("Checkout", 1), 2: ("Sign-up", 2)}  # id -> (name, advertiser)
# 2026-03-10 10:00 UTC, and 2026-03-11 23:00 UTC (2026-03-12 00:00 in Berlin)
FIRST = datetime(2026, 3, 10, 10, tzinfo=UTC)
LATE = datetime(2026, 3, 11, 23, tzinfo=UTC)


def conversion(
    event_id: str,
    pixel: int,
    tracker: TrackerSpec,
    at: datetime,
    revenue: int,
    *,
    attribution: str | None = "post_click",
    order_id: str | None = None,
    invalid: bool = False,
) -> Event:
    """A conversion of ``pixel`` attributed to a hit of ``tracker`` (its ids)."""
    return AN_IMPRESSION._replace(
        event_id=event_id,
        ts=int(at.timestamp() * 1_000_000),
        imp_type=11,
        tracker_id=tracker.id,
        advertiser_id=tracker.advertiser_id,
        line_item_id=tracker.line_item_id,
        publisher_id=tracker.publisher_id,
        placement_id=tracker.placement_id,
        payment_rule_id=tracker.payment_rule_id,
        media_cost_micros=0,
        booked_revenue_micros=revenue,
        cachebuster=None,
        invalid=invalid,
        invalid_reason="bot" if invalid else None,
        conversion_pixel_id=pixel,
        order_id=order_id,
        attribution=attribution,
        attribution_reason=None if attribution else "no_token",
        source_event_id=f"hit-{event_id}",
        source_ts=int(at.timestamp() * 1_000_000) - 60_000_000,
    )


# TRACKERS: 2 clicks of line item 1 (advertiser 1), 3 impressions of line item 2 (advertiser
# 1), 4 clicks and 5 impressions of line item 3 (advertiser 2).
BATCHES: list[list[Event]] = [
    [
        conversion("c1", 1, TRACKERS[1], FIRST, 12_345_678, order_id="o-1"),
        conversion("c3", 1, TRACKERS[2], FIRST, 2_500_000, attribution="post_view"),
        conversion("c4", 2, TRACKERS[3], FIRST, 7_000_001),
        conversion("bad", 2, TRACKERS[3], FIRST, 50_000_000, invalid=True),
        conversion("none", 1, TRACKERS[1], FIRST, 40_000_000, attribution=None),
        AN_IMPRESSION._replace(ts=int(FIRST.timestamp() * 1_000_000)),
    ],
    [
        # the order c1 counted: not counted again
        conversion("c2", 1, TRACKERS[1], FIRST, 99_000_000, order_id="o-1"),
        conversion("c5", 2, TRACKERS[4], LATE, 1, attribution="post_view"),
    ],
]
# What the conversion pixel rollups hold by day: (day, pixel, tracker, advertiser, line item,
# publisher, placement, payment rule) -> (conversions, post-click, post-view, revenue micros).
EXPECTED_DAILY = {
    (FIRST.date(), 1, 2, 1, 1, 1, 1, 1): (1, 1, 0, 12_345_678),
    (FIRST.date(), 1, 3, 1, 2, 2, 0, 2): (1, 0, 1, 2_500_000),
    (FIRST.date(), 2, 4, 2, 3, 2, 2, 0): (1, 1, 0, 7_000_001),
    (LATE.date(), 2, 5, 2, 3, 1, 0, 0): (1, 0, 1, 1),
}


def seed_pixels(engine: Engine) -> None:
    with engine.begin() as conn:
        for pixel, (name, advertiser) in PIXELS.items():
            conn.execute(
                t.conversion_pixels.insert(),
                {
                    "id": pixel,
                    "advertiser_id": advertiser,
                    "name": name,
                    "state": "active",
                    "trigger_type": "hybrid",
                    "post_click_window_minutes": 43_200,
                    "post_view_window_minutes": 1_440,
                    "min_minutes_per_conversion": 0,
                    "post_click_revenue_micros": 0,
                    "post_view_revenue_micros": 0,
                    "event_type": "other",
                    "created_at": NOW,
                    "last_modified": NOW,
                },
            )


def count_conversions(engine: Engine) -> None:
    """:data:`BATCHES` committed as the aggregator commits them (one position each)."""
    sink = SqlRollupSink(engine)
    for position, batch in enumerate(BATCHES):
        table = events_to_table(batch)
        candidates = conversion_candidates(table)
        verdicts = judge(candidates, sink.conversion_history(candidates))
        table = apply_verdicts(table, verdicts.reasons)
        sink.write(
            fold_table(table),
            starts={"log": position},
            positions={"log": position + 1},
            conversions=verdicts,
        )
