"""Formatted report rows: what repeats across rows (interval starts, dimension values) is
formatted once per report, which must not merge values that only look alike -- the two 01:00
of New York's autumn change -- nor mix up rows that share their dimension values."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.formats import to_csv, to_json, to_table
from adtrack.reporting.request import Interval, ReportRequest
from adtrack.reporting.results import DimensionValue, Report, ReportRow

NY = ZoneInfo("America/New_York")
FIRST_ONE = datetime(2026, 11, 1, 1, tzinfo=NY)  # 01:00 EDT
SECOND_ONE = datetime(2026, 11, 1, 1, fold=1, tzinfo=NY)  # 01:00 EST, an hour later
LINE_ITEM = (DimensionValue("line_item", 3, "Retargeting"),)
OTHER = (DimensionValue("line_item", 4, None),)


def autumn_report() -> Report:
    rows = [
        # 3 conversions (2 post-click, 1 post-view) booking 7.00 for 2.50 of media cost; 800
        # impressions measured, 600 of them viewable
        ReportRow(
            FIRST_ONE,
            LINE_ITEM,
            Counters(1000, 10, 1, 0, 2_500_000, 4_000_000, 3, 2, 1, 7_000_000, 600, 800),
        ),
        ReportRow(FIRST_ONE, OTHER, Counters(0, 3, 0, 1, 150_000, 100_000)),
        ReportRow(SECOND_ONE, LINE_ITEM, Counters(2000, 0, 0, 0, 1, 0)),
    ]
    request = ReportRequest(
        start=datetime(2026, 11, 1, tzinfo=NY),
        end=datetime(2026, 11, 2, tzinfo=NY),
        interval=Interval.HOUR,
        timezone="America/New_York",
        group_by=("line_item",),
    )
    totals = Counters(*(sum(column) for column in zip(*(r.counters for r in rows), strict=True)))
    return Report(request=request, rows=rows, totals=totals)


def test_json_rows_keep_both_autumn_hours_and_their_own_values() -> None:
    rows = orjson.loads(to_json(autumn_report()))["rows"]
    assert rows == [
        {
            "interval_start": "2026-11-01T01:00:00-04:00",
            "line_item_id": 3,
            "line_item": "Retargeting",
            "imps": 1000,
            "clicks": 10,
            "invalid_imps": 1,
            "invalid_clicks": 0,
            "ctr": "0.010000",
            "media_cost": "2.500000",
            "booked_revenue": "4.000000",
            "profit": "1.500000",
            "cpm": "2.500000",
            "viewable_imps": 600,
            "view_measured_imps": 800,
            "viewability_rate": "0.750000",
            "view_measurement_rate": "0.800000",
            "conversions": 3,
            "post_click_conversions": 2,
            "post_view_conversions": 1,
            "conversion_revenue": "7.000000",
            "cpa": "0.833333",  # 2.50 / 3, to the micro
            "conversion_rate": "0.300000",  # 3 / 10 clicks
            "roas": "2.800000",  # 7.00 / 2.50
        },
        {
            "interval_start": "2026-11-01T01:00:00-04:00",
            "line_item_id": 4,
            "line_item": None,
            "imps": 0,
            "clicks": 3,
            "invalid_imps": 0,
            "invalid_clicks": 1,
            "ctr": None,
            "media_cost": "0.150000",
            "booked_revenue": "0.100000",
            "profit": "-0.050000",
            "cpm": None,
            "viewable_imps": 0,
            "view_measured_imps": 0,
            "viewability_rate": None,
            "view_measurement_rate": None,
            "conversions": 0,
            "post_click_conversions": 0,
            "post_view_conversions": 0,
            "conversion_revenue": "0.000000",
            "cpa": None,  # no conversions
            "conversion_rate": "0.000000",
            "roas": "0.000000",
        },
        {
            "interval_start": "2026-11-01T01:00:00-05:00",
            "line_item_id": 3,
            "line_item": "Retargeting",
            "imps": 2000,
            "clicks": 0,
            "invalid_imps": 0,
            "invalid_clicks": 0,
            "ctr": "0.000000",
            "media_cost": "0.000001",
            "booked_revenue": "0.000000",
            "profit": "-0.000001",
            "cpm": "0.000001",
            "viewable_imps": 0,
            "view_measured_imps": 0,  # pixels: not measured
            "viewability_rate": None,
            "view_measurement_rate": "0.000000",
            "conversions": 0,
            "post_click_conversions": 0,
            "post_view_conversions": 0,
            "conversion_revenue": "0.000000",
            "cpa": None,
            "conversion_rate": None,  # no clicks
            "roas": "0.000000",
        },
    ]


def test_csv_and_table_keep_both_autumn_hours() -> None:
    report = autumn_report()
    lines = list(csv.reader(io.StringIO(to_csv(report))))
    assert [line[:3] for line in lines[1:]] == [
        ["2026-11-01T01:00:00-04:00", "3", "Retargeting"],
        ["2026-11-01T01:00:00-04:00", "4", ""],
        ["2026-11-01T01:00:00-05:00", "3", "Retargeting"],
        ["Totals", "", ""],
    ]
    table = to_table(report).splitlines()
    assert table[2].startswith("2026-11-01T01:00:00-04:00  3 Retargeting")
    assert table[4].startswith("2026-11-01T01:00:00-05:00  3 Retargeting")
