"""The Reports screen: table with totals, chart data by impression type, downloads, the feed;
reports by conversion pixel."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.domain.model import Role
from adtrack.services.ports import RollupDelta
from adtrack.web.state import state_of
from tests.support.console import ConsoleBed, console_bed, field_errors
from tests.support.pixel_conversions import count_conversions, seed_pixels
from tests.support.reporting import (
    TRACKERS,
    RawEvent,
    load_events,
    load_rollups,
    seed_catalogue,
    to_event,
)

# A fixed window well inside the raw-event retention: yesterday and the day before, UTC.
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAY1 = TODAY - timedelta(days=2)
DAY2 = TODAY - timedelta(days=1)
IMP = TRACKERS[0]  # impression tracker 1 (line item 1, publisher 1)
CLICK = TRACKERS[1]  # click tracker 2 (line item 1, publisher 1)


@pytest.fixture
def bed(tmp_path: Path):
    with console_bed(tmp_path) as bed:
        seed_catalogue(bed.engine)
        events = [
            RawEvent(DAY1 + timedelta(hours=3), IMP, 1_200, 2_500, False, country="US"),
            RawEvent(DAY1 + timedelta(hours=4), IMP, 1_200, 2_500, False, device_type="mobile"),
            RawEvent(DAY1 + timedelta(hours=5), IMP, 0, 0, True),
            RawEvent(DAY2 + timedelta(hours=9), IMP, 1_200, 2_500, False, country="FR"),
            RawEvent(
                DAY2 + timedelta(hours=9, minutes=5),
                CLICK,
                100_000,
                0,
                False,
                referrer="https://news.example.com/a",
            ),
        ]
        load_rollups(bed.engine, events)
        # The audience rollups, as the aggregator's fold writes them.
        audience = fold([to_event(ev, f"ev-{i}") for i, ev in enumerate(events)])
        SqlRollupSink(bed.engine).add_rollups(
            RollupDelta(geo=audience.geo, devices=audience.devices)
        )
        load_events(bed.engine, events, state_of(bed.app).services.settings.raw_events_dir)
        bed.sign_in(bed.add_user(Role.REPORTER))
        yield bed


def query(**extra: str) -> str:
    params = {
        "start": DAY1.date().isoformat(),
        "end": DAY2.date().isoformat(),
        "interval": "day",
        **extra,
    }
    return "&".join(f"{k}={v}" for k, v in params.items())


def table_rows(html: str) -> list[list[str]]:
    body = html.split('<table id="report-table">')[1].split("</table>")[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        rows.append([c.strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)])
    return rows


def test_report_table_totals_and_chart(bed: ConsoleBed) -> None:
    page = bed.client.get("/reports?" + query() + "&group_by=imp_type")
    assert page.status_code == 200
    rows = table_rows(page.text)
    header, body, totals = rows[0], rows[1:-1], rows[-1]
    assert header[:4] == ["Interval", "Impression type", "Imps", "Clicks"]
    assert [r[:4] for r in body] == [
        [DAY1.date().isoformat(), "9 External Impression", "2", "0"],
        [DAY2.date().isoformat(), "9 External Impression", "1", "0"],
        [DAY2.date().isoformat(), "10 External Click", "0", "1"],
    ]
    assert totals[:4] == ["Totals", "", "3", "1"]
    assert body[0][4] == "1"  # invalid imps are counted apart
    assert header[6:8] == ["CTR", "Media cost"]
    assert body[0][6:8] == ["0.00 %", "0.0024"]  # money without trailing zeros
    assert body[2][6] == ""  # no imps, no CTR
    assert totals[6:8] == ["33.33 %", "0.1036"]
    chart = json.loads(re.search(r'id="chart-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert chart["labels"] == [DAY1.date().isoformat(), DAY2.date().isoformat()]
    assert chart["series"] == [
        {"label": "9 External Impression: imps", "values": [2, 1]},
        {"label": "10 External Click: clicks", "values": [0, 1]},
        {"label": "9 External Impression: viewable imps", "values": [0, 0]},  # (pixels)
    ]
    views = header.index("Viewable imps")  # (the conversions' columns follow)
    viewability = ["Viewable imps", "Measured imps", "Viewability rate", "Measurement rate"]
    assert header[views : views + 4] == viewability
    assert body[0][views : views + 4] == ["0", "0", "", "0.00 %"]  # nothing measured: no rate
    assert '<canvas id="report-chart"' in page.text and "chart.umd.min.js" in page.text


def test_defaults_filters_and_grouping(bed: ConsoleBed) -> None:
    default = bed.client.get("/reports")
    assert default.status_code == 200 and "9 External Impression" in default.text
    by_line_item = bed.client.get(
        "/reports?" + query(interval="cumulative") + "&group_by=line_item&imp_type=10"
    )
    rows = table_rows(by_line_item.text)
    assert rows[0][:3] == ["Interval", "Line item", "Imps"]
    assert rows[1][:4] == ["All", "Spring sale", "0", "1"]
    bad = bed.client.get("/reports?start=2026-02-10&end=2026-02-01")
    assert bad.status_code == 422 and "must be after start" in bad.text
    wrong_interval = bed.client.get("/reports?" + query(interval="fortnight"))
    assert "interval" in field_errors(wrong_interval.text)


def test_audience_grouping_filters_chart_and_refusals(bed: ConsoleBed) -> None:
    form = bed.client.get("/reports")
    for name in ("country", "device_type", "os", "browser"):
        assert f'name="{name}"' in form.text
    page = bed.client.get("/reports?" + query() + "&group_by=country")
    assert page.status_code == 200
    rows = table_rows(page.text)
    assert rows[0][:3] == ["Interval", "Country", "Imps"]
    # Rows in order of the stored values, where the unknown one ("") comes first.
    assert [r[:4] for r in rows[1:-1]] == [
        [DAY1.date().isoformat(), "Unknown", "1", "0"],
        [DAY1.date().isoformat(), "US", "1", "0"],
        [DAY2.date().isoformat(), "Unknown", "0", "1"],
        [DAY2.date().isoformat(), "FR", "1", "0"],
    ]
    chart = json.loads(re.search(r'id="chart-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert "Imps over time, by country" in page.text
    # Most imps first; ties by name.
    assert chart["series"] == [
        {"label": "FR: imps", "values": [0, 1]},
        {"label": "US: imps", "values": [1, 0]},
        {"label": "Unknown: imps", "values": [1, 0]},
    ]
    mobile = bed.client.get("/reports?" + query(interval="cumulative", device_type="mobile"))
    assert table_rows(mobile.text)[-1][:4] == ["Totals", "", "1", "0"]  # grouped by imp type
    bad = bed.client.get("/reports?" + query(country="France"))
    assert bad.status_code == 422 and "two-letter" in field_errors(bad.text)["country"]
    mixed = bed.client.get("/reports?" + query() + "&group_by=country&group_by=publisher")
    assert mixed.status_code == 422 and "cannot be combined" in mixed.text
    csv_answer = bed.client.get(
        "/reports/download?" + query(format="csv", interval="cumulative") + "&group_by=country"
    )
    lines = list(csv.reader(io.StringIO(csv_answer.text)))
    assert lines[0][:3] == ["interval_start", "country", "imps"]
    assert sorted(line[1] for line in lines[1:-1]) == ["FR", "US", "Unknown"]


def test_downloads(bed: ConsoleBed) -> None:
    answer = bed.client.get("/reports/download?" + query(format="csv") + "&group_by=imp_type")
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(answer.text)))
    assert lines[0][:4] == ["interval_start", "imp_type_id", "imp_type", "imps"]
    assert lines[-1][0] == "Totals" and lines[-1][3] == "3"
    xlsx = bed.client.get("/reports/download?" + query(format="xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.cell(1, 1).value == "interval_start"


def test_click_tracker_feed_download(bed: ConsoleBed) -> None:
    start = DAY2.strftime("%Y-%m-%dT%H:%M")
    end = (DAY2 + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M")
    answer = bed.client.get(f"/reports/feed?kind=click&start={start}&end={end}")
    assert answer.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(answer.text)))
    assert row["tracker_id"] == "2" and row["site_domain"] == "news.example.com"
    too_long = bed.client.get(
        f"/reports/feed?kind=click&start={start}&end={(DAY2 + timedelta(hours=30)):%Y-%m-%dT%H:%M}"
    )
    assert too_long.status_code == 422 and "24 hours" in too_long.text


def test_reports_by_conversion_pixel(tmp_path: Path) -> None:
    with console_bed(tmp_path) as bed:
        seed_catalogue(bed.engine)
        seed_pixels(bed.engine)
        count_conversions(bed.engine)
        bed.sign_in(bed.add_user(Role.REPORTER))
        form = bed.client.get("/reports")
        assert '<option value="1">Checkout (1)</option>' in form.text
        window = "start=2026-03-10&end=2026-03-11&interval=day"
        page = bed.client.get(f"/reports?{window}&group_by=conversion_pixel")
        assert page.status_code == 200, page.text
        rows = table_rows(page.text)
        assert rows[0] == [
            "Interval",
            "Conversion pixel",
            "Conversions",
            "Post-click conversions",
            "Post-view conversions",
            "Conversion revenue",
        ]
        assert rows[1:] == [
            ["2026-03-10", "Checkout", "2", "1", "1", "14.845678"],
            ["2026-03-10", "Sign-up", "1", "1", "0", "7.000001"],
            ["2026-03-11", "Sign-up", "1", "0", "1", "0.000001"],
            ["Totals", "", "4", "2", "2", "21.84568"],
        ]
        assert "Conversions over time, by conversion pixel" in page.text
        chart = json.loads(re.search(r'id="chart-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
        assert chart["series"] == [
            {"label": "Checkout: conversions", "values": [2, 0]},
            {"label": "Sign-up: conversions", "values": [1, 1]},
        ]
        filtered = bed.client.get(f"/reports?{window}&conversion_pixel_id=1&group_by=line_item")
        assert [r[1:3] for r in table_rows(filtered.text)[1:-1]] == [
            ["Spring sale", "1"],
            ["Brand awareness", "1"],
        ]
        mixed = bed.client.get(f"/reports?{window}&group_by=conversion_pixel&group_by=imp_type")
        assert mixed.status_code == 422 and "cannot be combined with conversion_pixel" in mixed.text
