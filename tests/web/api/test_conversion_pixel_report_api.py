"""Reports by conversion pixel over HTTP, on SQLite and PostgreSQL: ``GET /reports`` groups and
filters by ``conversion_pixel`` (JSON and CSV, pixels by name), saved reports keep and run
such a definition, other metrics and dimensions with it are a 422 naming the field, and the
OpenAPI document lists the filter. (One test per backend does the reads, one the refusals.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_fixtures import API, ApiTestbed, error_fields, make_testbed
from tests.support.pixel_conversions import count_conversions, seed_pixels
from tests.support.reporting import seed_catalogue

WINDOW = {"start": "2026-03-10", "end": "2026-03-13", "interval": "cumulative"}


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiTestbed]:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    for testbed in make_testbed(url, tmp_path):
        seed_catalogue(testbed.engine)
        seed_pixels(testbed.engine)
        count_conversions(testbed.engine)
        yield testbed


def test_reports_by_conversion_pixel(api: ApiTestbed) -> None:
    grouped = api.reporter.get(
        f"{API}/reports", params={**WINDOW, "group_by": "conversion_pixel,advertiser"}
    )
    assert grouped.status_code == 200, grouped.text
    body = grouped.json()
    assert [
        (r["conversion_pixel_id"], r["conversion_pixel"], r["advertiser_id"], r["conversions"])
        for r in sorted(body["rows"], key=lambda r: r["conversion_pixel_id"])
    ] == [(1, "Checkout", 1, 2), (2, "Sign-up", 2, 2)]
    assert body["totals"] == {
        "conversions": 4,
        "post_click_conversions": 2,
        "post_view_conversions": 2,
        "conversion_revenue": "21.845680",
    }

    filtered = api.reporter.get(
        f"{API}/reports",
        params={**WINDOW, "conversion_pixel_id": ["1"], "group_by": "line_item", "format": "csv"},
    )
    assert filtered.status_code == 200, filtered.text
    table = list(csv.reader(io.StringIO(filtered.text)))
    assert table[0] == [
        "interval_start",
        "line_item_id",
        "line_item",
        "conversions",
        "post_click_conversions",
        "post_view_conversions",
        "conversion_revenue",
    ]
    assert sorted(row[1:] for row in table[1:-1]) == [
        ["1", "Spring sale", "1", "1", "0", "12.345678"],
        ["2", "Brand awareness", "1", "0", "1", "2.500000"],
    ]

    saved = api.reporter.post(
        f"{API}/saved-reports",
        json={
            "name": "Conversions by pixel",
            "definition": {**WINDOW, "group_by": ["conversion_pixel"], "conversion_pixel_id": "2"},
        },
    )
    assert saved.status_code == 201, saved.text
    run = api.reporter.get(f"{API}/saved-reports/{saved.json()['id']}/run")
    assert run.status_code == 200, run.text
    assert [(r["conversion_pixel"], r["conversion_revenue"]) for r in run.json()["rows"]] == [
        ("Sign-up", "7.000002")
    ]
    refused = api.reporter.post(
        f"{API}/saved-reports",
        json={"name": "x", "definition": {**WINDOW, "group_by": "conversion_pixel,country"}},
    )
    assert refused.status_code == 422 and error_fields(refused) == ["definition.group_by"]


# (query, the field named, a word of the message)
REFUSED = [
    ({"group_by": "conversion_pixel", "metrics": "conversions,clicks"}, "metrics", "clicks"),
    ({"conversion_pixel_id": "1", "metrics": "cpa"}, "metrics", "cpa"),
    ({"group_by": "conversion_pixel", "os": "iOS"}, "os", "os"),
    ({"group_by": "conversion_pixel,imp_type"}, "group_by", "imp_type"),
    ({"conversion_pixel_id": "one"}, "conversion_pixel_id", "one"),
]


def test_refusals_name_the_field_and_the_metric_and_openapi_lists_the_filter(
    api: ApiTestbed,
) -> None:
    for query, field, words in REFUSED:
        response = api.reporter.get(f"{API}/reports", params={**WINDOW, **query})
        assert response.status_code == 422, (query, response.text)
        assert error_fields(response) == [field]
        assert words in response.json()["detail"][0]["message"], query
    parameters = api.app.openapi()["paths"]["/api/v1/reports"]["get"]["parameters"]
    pixel = next(p for p in parameters if p["name"] == "conversion_pixel_id")
    assert "conversion_revenue" in pixel["description"]
