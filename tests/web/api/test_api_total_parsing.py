"""Values the parsers did not expect answer 422 naming the field, never 500 (API).

Each case below answered 500 before the total parsers (``domain/parsing.py``): non-ASCII
digits that ``str.isdigit()`` accepts but ``int()`` refuses, ids beyond the id columns (SQLite
cannot bind them), and dates at the calendar's edges (adding a time zone or a day overflows).
The clients re-raise nothing: a server error is seen as the 500 a real client would get.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adtrack.domain.model import Role
from tests.support.api_fixtures import API, ApiTestbed, bearer, error_fields, make_testbed

WINDOW = {"start": "2026-01-01", "end": "2026-01-02"}
SUPERSCRIPT_TWO = "\u00b2"  # "²": str.isdigit() is true, int() refuses it
ARABIC_THREE = "\u0663"  # "٣": int() reads it as 3
BEYOND_INT64 = "99999999999999999999"
ID_FILTERS = (
    "imp_type",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "payment_rule_id",
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiTestbed]:
    folder = tmp_path_factory.mktemp("total-parsing")
    yield from make_testbed(f"sqlite:///{folder / 'adtrack.db'}", folder)


@pytest.fixture(scope="module")
def admin(api: ApiTestbed) -> TestClient:
    # raise_server_exceptions=False: a crash must show up as the 500 a real client would get.
    return TestClient(
        api.app, headers=bearer(api.tokens[Role.ADMIN]), raise_server_exceptions=False
    )


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert field in error_fields(response), response.text


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, ARABIC_THREE, BEYOND_INT64, "1_000", "-1"])
@pytest.mark.parametrize("field", ID_FILTERS)
@pytest.mark.parametrize("path", ["reports/summary", "reports"])
def test_report_id_filters_refuse_what_is_not_an_id(
    admin: TestClient, path: str, field: str, value: str
) -> None:
    _refused(admin.get(f"{API}/{path}", params={**WINDOW, field: value}), field)


def test_the_issue_urls_answer_422(admin: TestClient) -> None:
    _refused(admin.get(f"{API}/reports/summary?{_window()}&tracker_id=%C2%B2"), "tracker_id")
    _refused(
        admin.get(f"{API}/reports?{_window()}&advertiser_id=99999999999999999999"),
        "advertiser_id",
    )
    _refused(admin.get(f"{API}/reports/summary?start=9999-12-31T23:59:59Z&end=2026-01-02"), "start")


def _window() -> str:
    return "&".join(f"{k}={v}" for k, v in WINDOW.items())


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z", "start"),
        ("2026-01-01", "9999-12-31T23:59:59Z", "end"),
        ("9999-12-31", "9999-12-31T23:00:00", "start"),
        ("0001-01-01", "0001-01-02", "start"),
        ("0001-01-01T00:00:00+05:00", "2026-01-02", "start"),
        ("2026-01-01", "2100-01-01T00:00:01Z", "end"),
        ("\u0662\u0660\u0662\u0666-01-01", "2026-01-02", "start"),  # Arabic-Indic digits
    ],
)
@pytest.mark.parametrize("path", ["reports/summary", "reports", "feeds/click-trackers"])
def test_dates_outside_the_supported_calendar_are_refused(
    admin: TestClient, path: str, start: str, end: str, field: str
) -> None:
    _refused(admin.get(f"{API}/{path}", params={"start": start, "end": end}), field)


def test_the_last_supported_day_still_works(admin: TestClient) -> None:
    response = admin.get(
        f"{API}/reports", params={"start": "2099-12-01", "end": "2100-01-01", "interval": "day"}
    )
    assert response.status_code == 200, response.text
    response = admin.get(
        f"{API}/reports/summary", params={"start": "2099-12-31", "end": "2099-12-31T23:30:00Z"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, BEYOND_INT64, "0", "-3"])
@pytest.mark.parametrize(
    "template",
    [
        "saved-reports/{}",
        "saved-reports/{}/run",
        "advertisers/{}",
        "impression-trackers/{}",
        "users/{}",
    ],
)
def test_path_ids_beyond_the_id_columns_are_refused(
    admin: TestClient, template: str, value: str
) -> None:
    response = admin.get(f"{API}/{template.format(value)}")
    assert response.status_code == 422, response.text
    assert len(error_fields(response)) == 1


@pytest.mark.parametrize("value", [SUPERSCRIPT_TWO, BEYOND_INT64])
@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("line-items", "advertiser_id"),
        ("placements", "publisher_id"),
        ("impression-trackers", "line_item_id"),
        ("click-trackers", "publisher_id"),
    ],
)
def test_list_filters_refuse_what_is_not_an_id(
    admin: TestClient, resource: str, field: str, value: str
) -> None:
    _refused(admin.get(f"{API}/{resource}", params={field: value}), field)


@pytest.mark.parametrize(
    "body",
    [
        {"start_date": "9999-12-31T23:59:59-05:00"},
        {"start_date": "0001-01-01T00:00:00+05:00"},
        {"start_date": "9999-12-31T23:59:59Z"},
    ],
)
def test_catalogue_dates_at_the_calendar_edges_are_refused(
    admin: TestClient, body: dict[str, str]
) -> None:
    advertiser = admin.post(f"{API}/advertisers", json={"name": "Edge dates"})
    assert advertiser.status_code == 201, advertiser.text
    response = admin.post(
        f"{API}/line-items",
        json={"name": "Edges", "advertiser_id": advertiser.json()["id"], **body},
    )
    _refused(response, "start_date")


@pytest.mark.parametrize("value", [2**31, 2**63, 10**20])
def test_json_ids_beyond_the_id_columns_are_refused(admin: TestClient, value: int) -> None:
    response = admin.post(f"{API}/line-items", json={"name": "Big id", "advertiser_id": value})
    _refused(response, "advertiser_id")


def test_a_json_id_list_beyond_the_id_columns_is_refused(admin: TestClient) -> None:
    response = admin.post(
        f"{API}/saved-reports",
        json={"name": "Big", "definition": {"range": "yesterday", "advertiser_id": [10**20]}},
    )
    assert response.status_code == 422, response.text
    assert any("advertiser_id" in str(field) for field in error_fields(response)), response.text
