"""Reports by country, device type, OS and browser over HTTP, on SQLite and PostgreSQL: events
carrying the audience fields are appended to the event log, the aggregator commits them, and
``GET /reports`` (JSON, CSV, XLSX) and ``GET /reports/summary`` group and filter by them; bad
values and combinations the audience rollups cannot serve are a 422 naming the field; the
OpenAPI document lists the filters; the feeds carry the columns."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.runner import Aggregator
from adtrack.domain.events import Event
from adtrack.web.state import state_of
from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    error_fields,
    make_testbed,
    tracked_event,
)
from tests.support.raw_events import seed_raw_events


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiTestbed]:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    yield from make_testbed(url, tmp_path)


# (country, device type, os, browser) of the hits, and how many of each.
AUDIENCES = [
    (("US", "desktop", "Windows", "Chrome"), 4),
    (("US", "mobile", "iOS", "Mobile Safari"), 3),
    (("NL", "mobile", "Android", "Chrome Mobile"), 2),
    (("JP", "ctv", "Tizen", "Samsung Internet"), 1),
    ((None, None, None, None), 2),  # a private address and an agent nothing recognises
]


async def _log_and_aggregate(log_dir: Path, events: list[Event], api: ApiTestbed) -> None:
    writer = LocalEventLogWriter(log_dir, fsync="never")
    await writer.append([event.to_bytes() for event in events])
    await writer.close()
    aggregator = Aggregator(
        LocalEventLogReader(log_dir, consumer="agg"), SqlRollupSink(api.engine), archive=None
    )
    while await aggregator.run_once(1000):
        pass


@pytest.fixture
def loaded(api: ApiTestbed, tmp_path: Path) -> dict[str, Any]:
    chain = create_chain(api.admin)
    imp, clk = chain["impression_tracker"], chain["click_tracker"]
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    events = []
    for (country, device, os, browser), count in AUDIENCES:
        for i in range(count):
            events.append(
                tracked_event(imp, 9, base + timedelta(minutes=i), cost=1_000)._replace(
                    country=country, device_type=device, os=os, browser=browser
                )
            )
    events.append(
        tracked_event(clk, 10, base + timedelta(hours=1))._replace(
            country="US", device_type="mobile", os="iOS", browser="Mobile Safari"
        )
    )
    asyncio.run(_log_and_aggregate(tmp_path / "log", events, api))
    seed_raw_events(api.engine, state_of(api.app).services.settings.raw_events_dir, events)
    return {"chain": chain, "base": base}


def params(base: datetime, **more: str) -> dict[str, str]:
    return {
        "start": base.isoformat(),
        "end": (base + timedelta(hours=3)).isoformat(),
        "interval": "cumulative",
        "metrics": "imps,clicks",
        **more,
    }


def rows(api: ApiTestbed, query: dict[str, str], *columns: str) -> set[tuple[Any, ...]]:
    response = api.reporter.get(f"{API}/reports", params=query)
    assert response.status_code == 200, response.text
    return {tuple(row[c] for c in columns) for row in response.json()["rows"]}


def test_grouped_by_country_and_by_device(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    base = loaded["base"]
    assert rows(api, params(base, group_by="country"), "country", "imps", "clicks") == {
        ("US", 7, 1),
        ("NL", 2, 0),
        ("JP", 1, 0),
        ("Unknown", 2, 0),
    }
    assert rows(
        api, params(base, group_by="device_type,os,browser"), "device_type", "os", "browser", "imps"
    ) == {  # noqa: E501
        ("desktop", "Windows", "Chrome", 4),
        ("mobile", "iOS", "Mobile Safari", 3),
        ("mobile", "Android", "Chrome Mobile", 2),
        ("ctv", "Tizen", "Samsung Internet", 1),
        ("Unknown", "Unknown", "Unknown", 2),
    }


def test_filters_and_companions(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    base, chain = loaded["base"], loaded["chain"]
    name = chain["line_item"]["name"]
    assert rows(
        api,
        params(base, group_by="line_item,imp_type", country="us,Unknown"),
        "line_item",
        "imp_type",
        "imps",
        "clicks",
    ) == {(name, "9 External Impression", 9, 0), (name, "10 External Click", 0, 1)}
    assert rows(
        api,
        params(
            base,
            group_by="browser",
            device_type="mobile",
            advertiser_id=str(chain["advertiser"]["id"]),
        ),  # noqa: E501
        "browser",
        "imps",
        "clicks",
    ) == {("Mobile Safari", 3, 1), ("Chrome Mobile", 2, 0)}
    hourly = rows(
        api,
        params(base, interval="hour", group_by="device_type", os="Tizen"),
        "device_type",
        "imps",
    )
    assert hourly == {("ctv", 1)}


def test_csv_and_xlsx(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    query = params(loaded["base"], group_by="country", imp_type="9")
    response = api.reporter.get(f"{API}/reports", params={**query, "format": "csv"})
    assert response.status_code == 200, response.text
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["interval_start", "country", "imps", "clicks"]
    assert sorted(row[1:] for row in table[1:-1]) == [
        ["JP", "1", "0"],
        ["NL", "2", "0"],
        ["US", "7", "0"],
        ["Unknown", "2", "0"],
    ]
    assert table[-1] == ["Totals", "", "12", "0"]
    xlsx = api.reporter.get(f"{API}/reports", params={**query, "format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["interval_start", "country", "imps", "clicks"]
    assert sorted(row[1:] for row in cells[1:-1]) == [
        ["JP", 1, 0],
        ["NL", 2, 0],
        ["US", 7, 0],
        ["Unknown", 2, 0],
    ]


def test_summary_groups_and_filters_by_the_audience(
    api: ApiTestbed, loaded: dict[str, Any]
) -> None:
    base = loaded["base"]
    response = api.reporter.get(
        f"{API}/reports/summary",
        params={
            "start": base.isoformat(),
            "end": (base + timedelta(hours=3)).isoformat(),
            "group_by": "device_type",
            "device_type": "mobile,ctv",
        },
    )
    assert response.status_code == 200, response.text
    assert [(r["device_type"], r["imps"], r["clicks"]) for r in response.json()["rows"]] == [
        ("ctv", 1, 0),
        ("mobile", 5, 1),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"country": "USA"}, "country"),
        ({"device_type": "phone"}, "device_type"),
        ({"os": "x" * 65}, "os"),
        ({"group_by": "country,browser"}, "group_by"),
        ({"group_by": "publisher", "os": "iOS"}, "group_by"),
        ({"group_by": "country", "tracker_id": "1"}, "tracker_id"),
    ],
)
def test_bad_values_and_combinations_are_refused_naming_the_field(
    api: ApiTestbed, query: dict[str, str], field: str
) -> None:
    for path in ("reports", "reports/summary"):
        response = api.reporter.get(
            f"{API}/{path}", params={"start": "2026-01-01", "end": "2026-01-02", **query}
        )
        assert response.status_code == 422, (path, query, response.text)
        assert error_fields(response) == [field]


def test_the_openapi_document_lists_the_audience_filters(api: ApiTestbed) -> None:
    document = api.app.openapi()
    for path in ("/api/v1/reports", "/api/v1/reports/summary"):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"country", "device_type", "os", "browser"} <= names


def test_feeds_carry_the_audience_columns(api: ApiTestbed, loaded: dict[str, Any]) -> None:
    base = loaded["base"]
    window = {"start": base.isoformat(), "end": (base + timedelta(hours=3)).isoformat()}
    response = api.reporter.get(
        f"{API}/feeds/impression-trackers", params={**window, "format": "jsonl"}
    )
    assert response.status_code == 200, response.text
    objects = [orjson.loads(line) for line in response.content.splitlines()]
    audiences = {(o["country"], o["device_type"], o["os"], o["browser"]) for o in objects}
    assert audiences == {audience for audience, _ in AUDIENCES}
    clicks = api.reporter.get(f"{API}/feeds/click-trackers", params={**window, "format": "csv"})
    table = list(csv.reader(io.StringIO(clicks.text)))
    assert table[0][-4:] == ["country", "device_type", "os", "browser"]
    assert table[1][-4:] == ["US", "mobile", "iOS", "Mobile Safari"]
