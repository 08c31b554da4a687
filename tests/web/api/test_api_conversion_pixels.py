"""Conversion pixels through the API, on SQLite and PostgreSQL: the catalogue's shape (create,
list with filters, get, change, deactivate, delete), exact money, defaults, and refusals that
name the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adtrack.adapters.sql import tables
from tests.support.api_fixtures import API, ApiTestbed, created, error_fields, make_testbed

PIXELS = f"{API}/conversion-pixels"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(db_url, tmp_path)


@pytest.fixture
def advertiser_id(api: ApiTestbed) -> int:
    return int(created(api.trafficker, "advertisers", {"name": "Acme"})["id"])


def exact(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
    return body


def test_create_with_defaults(api: ApiTestbed, advertiser_id: int) -> None:
    pixel = created(
        api.trafficker, "conversion-pixels", {"advertiser_id": advertiser_id, "name": "Buy"}
    )
    assert pixel["trigger_type"] == "click"
    assert pixel["post_click_window_minutes"] == 43_200
    assert pixel["post_view_window_minutes"] == 1_440
    assert pixel["min_minutes_per_conversion"] is None
    assert pixel["post_click_revenue"] == 0 and pixel["post_view_revenue"] == 0
    assert pixel["event_type"] == "other"
    assert pixel["state"] == "active" and pixel["code"] is None
    assert api.reporter.get(f"{PIXELS}/{pixel['id']}").json() == pixel


def test_round_trip_of_every_field(api: ApiTestbed, advertiser_id: int) -> None:
    body = {
        "advertiser_id": advertiser_id,
        "name": "Checkout",
        "code": "checkout-1",
        "state": "inactive",
        "trigger_type": "hybrid",
        "post_click_window_minutes": 129_600,
        "post_view_window_minutes": 43_200,
        "min_minutes_per_conversion": 32_767,
        "post_click_revenue": "999999.999999",
        "post_view_revenue": "0.000001",
        "event_type": "purchase",
    }
    response = api.trafficker.post(PIXELS, json=body)
    assert response.status_code == 201, response.text
    pixel = exact(response)
    assert pixel["post_click_revenue"] == Decimal("999999.999999")
    assert pixel["post_view_revenue"] == Decimal("0.000001")
    for key in ("code", "state", "trigger_type", "event_type", "min_minutes_per_conversion"):
        assert pixel[key] == body[key]
    with api.engine.connect() as conn:
        row = conn.execute(
            select(tables.conversion_pixels).where(tables.conversion_pixels.c.id == pixel["id"])
        ).one()
    assert row.post_click_revenue_micros == 999_999_999_999
    assert row.post_view_revenue_micros == 1
    assert exact(api.reporter.get(f"{PIXELS}/{pixel['id']}")) == pixel


def test_list_filters_search_and_paging(api: ApiTestbed, advertiser_id: int) -> None:
    other = int(created(api.trafficker, "advertisers", {"name": "Other"})["id"])
    lead = created(
        api.trafficker,
        "conversion-pixels",
        {"advertiser_id": advertiser_id, "name": "Lead form", "event_type": "lead"},
    )
    cart = created(
        api.trafficker,
        "conversion-pixels",
        {
            "advertiser_id": advertiser_id,
            "name": "Cart",
            "code": "CART",
            "event_type": "add_to_cart",
            "trigger_type": "view",
        },
    )
    elsewhere = created(
        api.trafficker, "conversion-pixels", {"advertiser_id": other, "name": "Elsewhere"}
    )

    def ids(**params: object) -> list[int]:
        response = api.reporter.get(PIXELS, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids() == [lead["id"], cart["id"], elsewhere["id"]]
    assert ids(advertiser_id=advertiser_id) == [lead["id"], cart["id"]]
    assert ids(event_type="lead") == [lead["id"]]
    assert ids(trigger_type="view") == [cart["id"]]
    assert ids(q="cart") == [cart["id"]]
    assert ids(limit=1, offset=2) == [elsewhere["id"]]
    page = api.reporter.get(PIXELS, params={"limit": 1}).json()
    assert page["total"] == 3


def test_update_deactivate_and_delete(api: ApiTestbed, advertiser_id: int) -> None:
    pixel = created(
        api.trafficker, "conversion-pixels", {"advertiser_id": advertiser_id, "name": "Buy"}
    )
    url = f"{PIXELS}/{pixel['id']}"
    changed = api.trafficker.patch(
        url, json={"min_minutes_per_conversion": 0, "post_click_revenue": 12.5, "code": "buy"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_minutes_per_conversion"] == 0
    assert changed.json()["post_click_revenue"] == 12.5
    cleared = api.trafficker.patch(url, json={"min_minutes_per_conversion": None, "code": None})
    assert cleared.json()["min_minutes_per_conversion"] is None
    assert cleared.json()["code"] is None
    batch = api.trafficker.post(f"{PIXELS}/batch/deactivate", json={"ids": [pixel["id"]]})
    assert batch.status_code == 200, batch.text
    assert api.reporter.get(url).json()["state"] == "inactive"
    assert api.reporter.patch(url, json={"name": "x"}).status_code == 403
    assert api.trafficker.delete(url).status_code == 204
    assert api.reporter.get(url).status_code == 404


def test_an_advertiser_with_live_pixels_is_not_deleted(api: ApiTestbed, advertiser_id: int) -> None:
    pixel = created(
        api.trafficker, "conversion-pixels", {"advertiser_id": advertiser_id, "name": "Buy"}
    )
    refused = api.trafficker.delete(f"{API}/advertisers/{advertiser_id}")
    assert refused.status_code == 409, refused.text
    assert {"kind": "conversion_pixel", "id": pixel["id"], "name": "Buy"} in refused.json()[
        "blockers"
    ]
    assert api.trafficker.delete(f"{PIXELS}/{pixel['id']}").status_code == 204
    assert api.trafficker.delete(f"{API}/advertisers/{advertiser_id}").status_code == 204


def test_codes_are_unique_among_live_pixels(api: ApiTestbed, advertiser_id: int) -> None:
    first = created(
        api.trafficker,
        "conversion-pixels",
        {"advertiser_id": advertiser_id, "name": "A", "code": "same"},
    )
    clash = api.trafficker.post(
        PIXELS, json={"advertiser_id": advertiser_id, "name": "B", "code": "same"}
    )
    assert clash.status_code == 409 and error_fields(clash) == ["code"]
    batch = api.trafficker.post(
        f"{PIXELS}/batch",
        json={
            "items": [
                {"advertiser_id": advertiser_id, "name": "C", "code": "twice"},
                {"advertiser_id": advertiser_id, "name": "D", "code": "twice"},
            ]
        },
    )
    assert batch.status_code == 422, batch.text
    assert [(e["item"], e["field"]) for e in batch.json()["errors"]] == [(1, "code")]
    assert api.reporter.get(PIXELS, params={"q": "twice"}).json()["total"] == 0
    assert api.trafficker.delete(f"{PIXELS}/{first['id']}").status_code == 204
    created(
        api.trafficker,
        "conversion-pixels",
        {"advertiser_id": advertiser_id, "name": "B", "code": "same"},
    )


REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"post_click_window_minutes": 129_601}, "post_click_window_minutes"),
    ({"post_click_window_minutes": 0}, "post_click_window_minutes"),
    ({"post_click_window_minutes": "60"}, "post_click_window_minutes"),
    ({"post_click_window_minutes": 1.5}, "post_click_window_minutes"),
    ({"post_view_window_minutes": 43_201}, "post_view_window_minutes"),
    ({"post_view_window_minutes": None}, "post_view_window_minutes"),
    ({"min_minutes_per_conversion": -1}, "min_minutes_per_conversion"),
    ({"min_minutes_per_conversion": 32_768}, "min_minutes_per_conversion"),
    ({"min_minutes_per_conversion": True}, "min_minutes_per_conversion"),
    ({"post_click_revenue": -1}, "post_click_revenue"),
    ({"post_click_revenue": "0.0000001"}, "post_click_revenue"),
    ({"post_view_revenue": 1_000_000}, "post_view_revenue"),
    ({"post_view_revenue": "1e999999"}, "post_view_revenue"),
    ({"trigger_type": "impression"}, "trigger_type"),
    ({"event_type": "sale"}, "event_type"),
    ({"state": "paused"}, "state"),
    ({"name": ""}, "name"),
    ({"name": "nul\x00byte"}, "name"),
    ({"code": "has space"}, "code"),
    ({"advertiser_id": 999_999}, "advertiser_id"),
    ({"advertiser_id": 2**31}, "advertiser_id"),
    ({"line_item_id": 1}, "line_item_id"),
    ({"id": 5}, "id"),
]


@pytest.mark.parametrize(("change", "field"), REFUSALS)
def test_refusals_name_the_field(
    api: ApiTestbed, advertiser_id: int, change: dict[str, Any], field: str
) -> None:
    response = api.trafficker.post(
        PIXELS, json={"advertiser_id": advertiser_id, "name": "Buy", **change}
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == [field]


def test_updates_are_checked_too(api: ApiTestbed, advertiser_id: int) -> None:
    pixel = created(
        api.trafficker, "conversion-pixels", {"advertiser_id": advertiser_id, "name": "Buy"}
    )
    url = f"{PIXELS}/{pixel['id']}"
    for change, field in REFUSALS[:-2]:
        response = api.trafficker.patch(url, json=change)
        assert response.status_code == 422, (change, response.text)
        assert error_fields(response) == [field]
    assert api.reporter.get(url).json() == pixel
