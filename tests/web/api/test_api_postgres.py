"""The management API on PostgreSQL (a throw-away database per test): the same contract as on
SQLite, including the inputs PostgreSQL itself would choke on (NUL bytes, long text, big ids)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    created,
    error_fields,
    make_testbed,
)


@pytest.fixture
def api(pg_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(pg_url, tmp_path)


def test_chain_round_trip_search_and_filters(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    other = create_chain(api.trafficker, "-b")
    for key, path in (
        ("advertiser", "advertisers"),
        ("line_item", "line-items"),
        ("publisher", "publishers"),
        ("placement", "placements"),
        ("payment_rule", "payment-rules"),
        ("impression_tracker", "impression-trackers"),
        ("click_tracker", "click-trackers"),
    ):
        assert api.reporter.get(f"{API}/{path}/{chain[key]['id']}").json() == chain[key]
    listed = api.reporter.get(
        f"{API}/click-trackers", params={"q": "CLICKS-B", "publisher_id": other["publisher"]["id"]}
    ).json()
    assert [item["id"] for item in listed["items"]] == [other["click_tracker"]["id"]]
    page = api.reporter.get(f"{API}/line-items", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["offset"] == 1
    patched = api.trafficker.patch(
        f"{API}/line-items/{chain['line_item']['id']}",
        json={"revenue_value": "999999.999999", "start_date": "2024-05-01T02:00:00+02:00"},
    )
    assert patched.status_code == 200, patched.text
    exact = json.loads(patched.text, parse_float=Decimal)
    assert exact["revenue_value"] == Decimal("999999.999999")
    assert exact["start_date"] == "2024-05-01T00:00:00+00:00"


def test_refusals_name_the_field(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    other = create_chain(api.admin, "-b")
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("advertisers", {"name": "nul\x00byte"}, 422, "name"),
        ("advertisers", {"name": "x" * 300}, 422, "name"),
        ("advertisers", {"name": "ok", "code": "x" * 101}, 422, "code"),
        ("line-items", {"name": "LI", "advertiser_id": 2**31 - 1}, 422, "advertiser_id"),
        ("line-items", {"name": "LI", "advertiser_id": 2**31}, 422, "advertiser_id"),
        (
            "impression-trackers",
            {
                "name": "T",
                "line_item_id": chain["line_item"]["id"],
                "publisher_id": chain["publisher"]["id"],
                "placement_id": other["placement"]["id"],
            },
            422,
            "placement_id",
        ),
        (
            "click-trackers",
            {
                "name": "T",
                "line_item_id": chain["line_item"]["id"],
                "publisher_id": chain["publisher"]["id"],
                "landing_page_url": "javascript:alert(1)",
            },
            422,
            "landing_page_url",
        ),
        (
            "impression-trackers",
            {
                "name": "T",
                "code": chain["impression_tracker"]["code"],
                "line_item_id": chain["line_item"]["id"],
                "publisher_id": chain["publisher"]["id"],
            },
            409,
            "code",
        ),
    ]
    for path, body, status, field in cases:
        response = api.admin.post(f"{API}/{path}", json=body)
        assert response.status_code == status, (path, body, response.text)
        assert field in error_fields(response), response.text
    for params in ({"q": "nul\x00"}, {"q": "x" * 1000}, {"offset": 2**40}):
        response = api.reporter.get(f"{API}/advertisers", params=params)
        assert response.status_code == 422, response.text
    in_use = api.admin.delete(f"{API}/publishers/{chain['publisher']['id']}")
    assert in_use.status_code == 409
    assert {b["kind"] for b in in_use.json()["blockers"]} >= {"tracker", "placement"}


def test_users_and_roles(api: ApiTestbed) -> None:
    created(api.trafficker, "advertisers", {"name": "By trafficker"})
    assert api.reporter.post(f"{API}/advertisers", json={"name": "x"}).status_code == 403
    assert api.trafficker.get(f"{API}/users").status_code == 403
    new = api.admin.post(f"{API}/users", json={"email": "pg@example.com", "role": "reporter"})
    assert new.status_code == 201
    token = api.admin.post(f"{API}/users/{new.json()['id']}/tokens").json()["token"]
    assert api.client(token).get(f"{API}/me").json()["email"] == "pg@example.com"
    assert api.anonymous.get(f"{API}/advertisers").status_code == 401
