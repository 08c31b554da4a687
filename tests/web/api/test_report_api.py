"""The reporting API over HTTP: reports (JSON, CSV, XLSX), feeds, roles, and field errors.

Catalogue objects are created through the API; events go through the aggregator's SQL sink (the
real write path: raw events plus hourly and daily rollups)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook

from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.rollup import fold
from adtrack.web.state import state_of
from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    error_fields,
    tracked_event,
)
from tests.support.raw_events import seed_raw_events


@pytest.fixture
def loaded(api: ApiTestbed) -> dict[str, Any]:
    chain = create_chain(api.admin)
    imp, clk = chain["impression_tracker"], chain["click_tracker"]
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    events = [
        tracked_event(imp, 9, base + timedelta(minutes=i), cost=1_250, revenue=2_500)
        for i in range(8)
    ]
    events.append(tracked_event(imp, 9, base, cost=999, invalid=True))
    events += [
        tracked_event(
            clk,
            10,
            base + timedelta(hours=1),
            ancost=True,
            cost=300_000,
            referrer="https://news.example.com/x",
        ),
        tracked_event(clk, 10, base + timedelta(hours=1, minutes=5), invalid=True),
    ]
    SqlRollupSink(api.engine).write(fold(events), starts={}, positions=None)
    # The feeds read raw events from the archive: committed there as the aggregator does.
    seed_raw_events(api.engine, state_of(api.app).services.settings.raw_events_dir, events)
    return {"chain": chain, "base": base}


def window(base: datetime) -> dict[str, str]:
    return {
        "start": base.isoformat(),
        "end": (base + timedelta(hours=3)).isoformat(),
    }


def test_report_json_with_names_totals_and_exact_money(
    api: ApiTestbed, loaded: dict[str, Any]
) -> None:
    chain = loaded["chain"]
    response = api.reporter.get(
        f"{API}/reports",
        params={
            **window(loaded["base"]),
            "interval": "cumulative",
            "group_by": "line_item,imp_type",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    line_item = chain["line_item"]
    assert body["rows"] == [
        {
            "interval_start": loaded["base"].isoformat(),
            "line_item_id": line_item["id"],
            "line_item": line_item["name"],
            "imp_type_id": 9,
            "imp_type": "9 External Impression",
            "imps": 8,
            "clicks": 0,
            "invalid_imps": 1,
            "invalid_clicks": 0,
            "ctr": "0.000000",
            "media_cost": "0.010000",
            "booked_revenue": "0.020000",
            "profit": "0.010000",
            "cpm": "1.250000",
            "viewable_imps": 0,
            "view_measured_imps": 0,  # pixels: not measured
            "viewability_rate": None,
            "view_measurement_rate": "0.000000",
            "conversions": 0,
            "post_click_conversions": 0,
            "post_view_conversions": 0,
            "conversion_revenue": "0.000000",
            "cpa": None,
            "conversion_rate": None,
            "roas": "0.000000",
        },
        {
            "interval_start": loaded["base"].isoformat(),
            "line_item_id": line_item["id"],
            "line_item": line_item["name"],
            "imp_type_id": 10,
            "imp_type": "10 External Click",
            "imps": 0,
            "clicks": 1,
            "invalid_imps": 0,
            "invalid_clicks": 1,
            "ctr": None,
            "media_cost": "0.300000",
            "booked_revenue": "0.000000",
            "profit": "-0.300000",
            "cpm": None,
            "viewable_imps": 0,
            "view_measured_imps": 0,
            "viewability_rate": None,
            "view_measurement_rate": None,
            "conversions": 0,
            "post_click_conversions": 0,
            "post_view_conversions": 0,
            "conversion_revenue": "0.000000",
            "cpa": None,
            "conversion_rate": "0.000000",
            "roas": "0.000000",
        },
    ]
    assert body["totals"] == {
        "imps": 8,
        "clicks": 1,
        "invalid_imps": 1,
        "invalid_clicks": 1,
        "ctr": "0.125000",
        "media_cost": "0.310000",
        "booked_revenue": "0.020000",
        "profit": "-0.290000",
        "cpm": "38.750000",
        "viewable_imps": 0,
        "view_measured_imps": 0,
        "viewability_rate": None,
        "view_measurement_rate": "0.000000",
        "conversions": 0,
        "post_click_conversions": 0,
        "post_view_conversions": 0,
        "conversion_revenue": "0.000000",
        "cpa": None,
        "conversion_rate": "0.000000",
        "roas": "0.000000",
    }


def test_report_filters_metrics_and_hourly_rows(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    chain = loaded["chain"]
    response = api.reporter.get(
        f"{API}/reports",
        params=[
            *window(loaded["base"]).items(),
            ("interval", "hour"),
            ("group_by", "tracker"),
            ("tracker_id", str(chain["click_tracker"]["id"])),
            ("tracker_id", "999"),
            ("metrics", "clicks,invalid_clicks"),
        ],
    )
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert rows == [
        {
            "interval_start": (loaded["base"] + timedelta(hours=1)).isoformat(),
            "tracker_id": chain["click_tracker"]["id"],
            "tracker": chain["click_tracker"]["name"],
            "clicks": 1,
            "invalid_clicks": 1,
        }
    ]


def test_report_csv_and_xlsx(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    params = {**window(loaded["base"]), "interval": "cumulative", "group_by": "publisher"}
    response = api.reporter.get(f"{API}/reports", params={**params, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["interval_start", "publisher_id", "publisher"]
    assert rows[1][2] == loaded["chain"]["publisher"]["name"]
    assert rows[-1][0] == "Totals" and rows[-1][rows[0].index("media_cost")] == "0.310000"

    xlsx = api.reporter.get(f"{API}/reports", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    assert values[1][header.index("imps")] == 8
    assert values[-1][0] == "Totals"
    assert values[-1][header.index("booked_revenue")] == pytest.approx(0.02)


def test_reports_need_a_token_and_name_bad_fields(api: ApiTestbed) -> None:
    for path in ("reports", "feeds/click-trackers", "feeds/impression-trackers", "saved-reports"):
        response = api.anonymous.get(
            f"{API}/{path}", params={"start": "2026-01-01", "end": "2026-01-02"}
        )
        assert response.status_code == 401
        assert error_fields(response) == ["authorization"]
    cases = [
        ({"end": "2026-01-02"}, "start"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ({"start": "2026-01-01", "end": "2026-01-02", "timezone": "Nowhere/City"}, "timezone"),
        ({"start": "2026-01-01", "end": "2026-01-02", "group_by": "colour"}, "group_by"),
        ({"start": "2026-01-01", "end": "2026-01-02", "format": "pdf"}, "format"),
        ({"start": "2026-01-01", "end": "2026-01-02", "advertiser_id": "abc"}, "advertiser_id"),
    ]
    for params, field in cases:
        response = api.reporter.get(f"{API}/reports", params=params)
        assert response.status_code == 422, (params, response.text)
        assert error_fields(response) == [field]


def test_click_feed_streams_csv_and_jsonl(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    chain = loaded["chain"]
    params = window(loaded["base"])
    response = api.reporter.get(f"{API}/feeds/click-trackers", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [
        (r["tracker_id"], r["media_buy_cost"], r["site_domain"], r["invalid"]) for r in rows
    ] == [
        (str(chain["click_tracker"]["id"]), "0.300000", "news.example.com", "0"),
        (str(chain["click_tracker"]["id"]), "", "", "1"),
    ]
    assert rows[0]["tag_id"] == str(chain["placement"]["id"])

    jsonl = api.reporter.get(
        f"{API}/feeds/impression-trackers", params={**params, "format": "jsonl"}
    )
    assert jsonl.status_code == 200
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in jsonl.content.splitlines()]
    assert len(lines) == 9 and sum(1 for line in lines if line["invalid"]) == 1


def test_feed_windows_are_refused_with_the_field(api: ApiTestbed) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    too_long = {"start": (now - timedelta(hours=30)).isoformat(), "end": now.isoformat()}
    too_old = {
        "start": (now - timedelta(days=31)).isoformat(),
        "end": (now - timedelta(days=31) + timedelta(hours=1)).isoformat(),
    }
    for params, field in (
        (too_long, "end"),
        (too_old, "start"),
        ({}, "start"),
        ({**too_long, "format": "xml"}, "format"),
    ):
        response = api.reporter.get(f"{API}/feeds/click-trackers", params=params)
        assert response.status_code == 422, response.text
        assert error_fields(response) == [field]
