"""Reports by country, device type, OS and browser read the audience rollups: grouped and
filtered, in any time zone (local days take their edge hours from the hourly audience
rollups) and interval, unknown values labelled ``Unknown`` in JSON, CSV, XLSX and the text
table, on SQLite and PostgreSQL. The rollups are written by the aggregator's sink."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting import formats
from adtrack.reporting.request import UNKNOWN_LABEL, parse_report_request
from adtrack.services.ports import DeviceKey, GeoKey, RollupDelta
from tests.support.reporting import (
    BACKENDS,
    NAMES,
    clear_reporting_tables,
    migrated_engine,
    run_report,
)

IMP, CLICK = 9, 10
# Two hours: 2026-03-10 10:00 UTC (line item 1, advertiser 1) and 2026-03-11 23:00 UTC (line
# item 3, advertiser 2), which is 2026-03-12 00:00 in Berlin (UTC+1 until March 29).
FIRST = int(datetime(2026, 3, 10, 10, tzinfo=UTC).timestamp()) // 3600
LATE = int(datetime(2026, 3, 11, 23, tzinfo=UTC).timestamp()) // 3600


def imps(n: int, cost: int = 0) -> Counters:
    return Counters(imps=n, media_cost_micros=cost)


GEO = {
    GeoKey(FIRST, IMP, 1, 1, "US"): imps(5, 5_000),
    GeoKey(FIRST, IMP, 1, 1, "FR"): imps(3, 3_000),
    GeoKey(FIRST, IMP, 1, 1, ""): imps(2, 2_000),
    GeoKey(FIRST, CLICK, 1, 1, "US"): Counters(clicks=1, invalid_clicks=1),
    GeoKey(LATE, IMP, 2, 3, "US"): imps(4, 4_000),
}
DEVICES = {
    DeviceKey(FIRST, IMP, 1, 1, "mobile", "iOS", "Mobile Safari"): imps(6, 6_000),
    DeviceKey(FIRST, IMP, 1, 1, "desktop", "Windows", "Chrome"): imps(3, 3_000),
    DeviceKey(FIRST, IMP, 1, 1, "", "", ""): imps(1, 1_000),
    DeviceKey(FIRST, CLICK, 1, 1, "mobile", "iOS", "Mobile Safari"): Counters(clicks=1),
    DeviceKey(LATE, IMP, 2, 3, "tablet", "Android", "Chrome Mobile"): imps(4, 4_000),
}


@pytest.fixture(scope="module", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("audience")) as eng:
        clear_reporting_tables(eng)
        # Written in two deltas: the upserts add to what is there.
        half = dict(list(GEO.items())[:2])
        SqlRollupSink(eng).add_rollups(RollupDelta(geo=half))
        rest = {key: value for key, value in GEO.items() if key not in half}
        SqlRollupSink(eng).add_rollups(RollupDelta(geo=rest, devices=DEVICES))
        yield eng


def report(engine: Engine, **params: object) -> dict[str, object]:
    request = parse_report_request(
        {"start": "2026-03-10", "end": "2026-03-13", "interval": "cumulative", **params}
    )
    return formats.to_dict(run_report(engine, request))


def rows_of(result: dict[str, object], *columns: str) -> set[tuple[object, ...]]:
    rows = result["rows"]
    assert isinstance(rows, list)
    return {tuple(row[c] for c in columns) for row in rows}


def test_grouped_by_country_with_unknown_labelled(engine: Engine) -> None:
    result = report(engine, group_by="country", metrics="imps,clicks,media_cost")
    assert rows_of(result, "country", "imps", "clicks", "media_cost") == {
        ("US", 9, 1, "0.009000"),
        ("FR", 3, 0, "0.003000"),
        (UNKNOWN_LABEL, 2, 0, "0.002000"),
    }
    assert result["totals"] == {"imps": 14, "clicks": 1, "media_cost": "0.014000"}
    assert all("country_id" not in row for row in result["rows"])  # type: ignore[attr-defined]


def test_filtered_by_country_including_unknown(engine: Engine) -> None:
    result = report(engine, country="fr,Unknown", metrics="imps")
    assert result["totals"] == {"imps": 5}
    assert report(engine, country="DE", metrics="imps")["totals"] == {"imps": 0}


def test_grouped_with_the_companions_names_them(engine: Engine) -> None:
    result = report(engine, group_by="advertiser,line_item,imp_type,country", metrics="imps")
    assert ("Retargeting", NAMES["advertiser"][2], "US", 4) in rows_of(
        result, "line_item", "advertiser", "country", "imps"
    )
    filtered = report(engine, group_by="country", line_item_id="1", imp_type="9", metrics="imps")
    assert rows_of(filtered, "country", "imps") == {("US", 5), ("FR", 3), (UNKNOWN_LABEL, 2)}


def test_local_days_take_their_edge_hours_from_the_hourly_audience_rollups(
    engine: Engine,
) -> None:
    result = report(
        engine, interval="day", timezone="Europe/Berlin", group_by="country", metrics="imps"
    )
    assert rows_of(result, "interval_start", "country", "imps") == {
        ("2026-03-10T00:00:00+01:00", "US", 5),
        ("2026-03-10T00:00:00+01:00", "FR", 3),
        ("2026-03-10T00:00:00+01:00", UNKNOWN_LABEL, 2),
        ("2026-03-12T00:00:00+01:00", "US", 4),
    }


def test_hourly_interval_is_served(engine: Engine) -> None:
    result = report(engine, interval="hour", group_by="browser", imp_type="9", metrics="imps")
    assert rows_of(result, "interval_start", "browser", "imps") == {
        ("2026-03-10T10:00:00+00:00", "Mobile Safari", 6),
        ("2026-03-10T10:00:00+00:00", "Chrome", 3),
        ("2026-03-10T10:00:00+00:00", UNKNOWN_LABEL, 1),
        ("2026-03-11T23:00:00+00:00", "Chrome Mobile", 4),
    }


def test_grouped_and_filtered_by_device_dimensions(engine: Engine) -> None:
    result = report(engine, group_by="device_type,os", metrics="imps,clicks")
    assert rows_of(result, "device_type", "os", "imps", "clicks") == {
        ("mobile", "iOS", 6, 1),
        ("desktop", "Windows", 3, 0),
        ("tablet", "Android", 4, 0),
        (UNKNOWN_LABEL, UNKNOWN_LABEL, 1, 0),
    }
    mobile = report(engine, device_type="mobile,tablet", browser="Chrome Mobile", metrics="imps")
    assert mobile["totals"] == {"imps": 4}


def test_csv_xlsx_and_text_carry_the_value_or_unknown(engine: Engine) -> None:
    request = parse_report_request(
        {
            "start": "2026-03-10",
            "end": "2026-03-13",
            "interval": "cumulative",
            "group_by": "line_item,country",
            "metrics": "imps",
        }
    )
    result = run_report(engine, request)
    lines = formats.to_csv(result).splitlines()
    assert lines[0] == "interval_start,line_item_id,line_item,country,imps"
    assert "2026-03-10T00:00:00+00:00,1,Spring sale,Unknown,2" in lines
    assert "2026-03-10T00:00:00+00:00,3,Retargeting,US,4" in lines
    assert lines[-1] == "Totals,,,,14"

    sheet = load_workbook(io.BytesIO(formats.to_xlsx(result))).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["interval_start", "line_item_id", "line_item", "country", "imps"]
    assert ["2026-03-10T00:00:00+00:00", 1, "Spring sale", "FR", 3] in cells
    assert ["2026-03-10T00:00:00+00:00", 1, "Spring sale", "Unknown", 2] in cells
    assert cells[-1] == ["Totals", None, None, None, 14]

    table = formats.to_table(result)
    assert any(
        line.split()[-2:] == ["Unknown", "2"] and "1 Spring sale" in line
        for line in table.splitlines()
    )


def test_reports_without_audience_dimensions_read_the_main_rollups(engine: Engine) -> None:
    # Only the audience rollups hold rows here: a plain report finds nothing.
    assert report(engine, group_by="line_item", metrics="imps")["totals"] == {"imps": 0}
