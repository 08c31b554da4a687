"""Round trips through the management API for all seven catalogue resources: create, read,
change, list (search, state, filters, pages) and delete, on a real SQLite database."""

from __future__ import annotations

from typing import Any

import pytest

from adtrack.services import schemas
from adtrack.services.json_fields import ApiModel
from tests.support.api_fixtures import API, ApiTestbed, create_chain, created

OUT_MODELS: dict[str, type[ApiModel]] = {
    "advertisers": schemas.AdvertiserOut,
    "line-items": schemas.LineItemOut,
    "publishers": schemas.PublisherOut,
    "placements": schemas.PlacementOut,
    "payment-rules": schemas.PaymentRuleOut,
    "impression-trackers": schemas.ImpressionTrackerOut,
    "click-trackers": schemas.ClickTrackerOut,
}
CHAIN_PATHS = {
    "advertiser": "advertisers",
    "line_item": "line-items",
    "publisher": "publishers",
    "placement": "placements",
    "payment_rule": "payment-rules",
    "impression_tracker": "impression-trackers",
    "click_tracker": "click-trackers",
}


def test_the_whole_chain_is_created_with_every_field_as_documented(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    for key, path in CHAIN_PATHS.items():
        obj = chain[key]
        # The documented response model describes exactly what is returned (no more, no less).
        OUT_MODELS[path].model_validate(obj)
        assert obj["created_at"] == obj["last_modified"]
        assert obj["created_at"].endswith("+00:00")
        fetched = api.reporter.get(f"{API}/{path}/{obj['id']}")
        assert fetched.status_code == 200
        assert fetched.json() == obj

    line_item = chain["line_item"]
    assert line_item["advertiser_id"] == chain["advertiser"]["id"]
    assert line_item["revenue_type"] == "cpm"
    assert line_item["revenue_value"] == 2.5
    # A date means 00:00 UTC; date-times come back in UTC.
    assert line_item["start_date"] == "2024-05-01T00:00:00+00:00"
    assert line_item["end_date"] == "2024-06-01T00:00:00+00:00"

    rule = chain["payment_rule"]
    assert rule["pricing_type"] == "cpm"
    assert rule["cost_cpm"] == 1.25
    assert rule["priority"] == 7
    assert rule["is_base"] is False
    assert rule["advertiser_filter"] == "include"
    assert rule["advertiser_ids"] == [chain["advertiser"]["id"]]

    imp = chain["impression_tracker"]
    assert imp["tracker_type"] == "impression"
    assert "landing_page_url" not in imp
    # The advertiser was taken from the line item.
    assert imp["advertiser_id"] == chain["advertiser"]["id"]
    assert imp["placement_id"] == chain["placement"]["id"]
    assert imp["payment_rule_id"] == rule["id"]

    clk = chain["click_tracker"]
    assert clk["tracker_type"] == "click"
    assert clk["landing_page_url"] == "https://shop.example.com/spring?utm=1"
    assert clk["payment_rule_id"] is None
    # One id space for both kinds of tracker.
    assert clk["id"] != imp["id"]


def test_a_publisher_comes_with_its_base_rule(api: ApiTestbed) -> None:
    plain = created(api.admin, "publishers", {"name": "Plain"})
    custom = created(
        api.admin,
        "publishers",
        {"name": "Custom", "base_rule": {"pricing_type": "revshare", "revshare": 0.35}},
    )
    for publisher, share in ((plain, 0), (custom, 0.35)):
        rules = api.admin.get(
            f"{API}/payment-rules", params={"publisher_id": publisher["id"], "is_base": "true"}
        ).json()
        assert rules["total"] == 1
        base = rules["items"][0]
        assert base["is_base"] is True
        assert base["pricing_type"] == "revshare"
        assert base["revshare"] == share
    # The base rule can be edited but not deleted.
    base_id = base["id"]
    changed = api.admin.patch(f"{API}/payment-rules/{base_id}", json={"revshare": 0.4})
    assert changed.status_code == 200, changed.text
    assert changed.json()["revshare"] == 0.4
    refused = api.admin.delete(f"{API}/payment-rules/{base_id}")
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["field"]


@pytest.mark.parametrize(
    ("path", "changes"),
    [
        ("advertisers", {"name": "Acme Corp", "code": "NEW", "state": "inactive"}),
        ("line-items", {"revenue_type": "cpc", "revenue_value": "0.75", "end_date": None}),
        ("publishers", {"name": "Daily News Ltd", "code": None}),
        ("placements", {"name": "Sidebar", "state": "inactive"}),
        (
            "payment-rules",
            {"cost_cpm": 3.75, "priority": 10, "description": "Spring, per mille"},
        ),
        ("impression-trackers", {"name": "Renamed", "placement_id": None, "code": "imp-2"}),
        ("click-trackers", {"landing_page_url": "http://example.org/", "state": "inactive"}),
    ],
)
def test_patch_changes_only_the_given_fields(
    api: ApiTestbed, path: str, changes: dict[str, Any]
) -> None:
    chain = create_chain(api.admin)
    key = next(k for k, p in CHAIN_PATHS.items() if p == path)
    before = chain[key]
    response = api.trafficker.patch(f"{API}/{path}/{before['id']}", json=changes)
    assert response.status_code == 200, response.text
    after = response.json()
    expected = {
        **before,
        **{k: (float(v) if k == "revenue_value" else v) for k, v in changes.items()},
    }
    for name in expected.keys() - {"last_modified"}:
        assert after[name] == expected[name], name
    assert after["last_modified"] > before["last_modified"]
    assert api.reporter.get(f"{API}/{path}/{before['id']}").json() == after


def test_an_empty_patch_changes_nothing(api: ApiTestbed) -> None:
    advertiser = created(api.admin, "advertisers", {"name": "Same"})
    response = api.admin.patch(f"{API}/advertisers/{advertiser['id']}", json={})
    assert response.status_code == 200
    assert response.json() == advertiser


def test_lists_search_filter_and_page(api: ApiTestbed) -> None:
    first = create_chain(api.admin, "-one")
    second = create_chain(api.admin, "-two")
    names = [f"Zeta {i:02d}" for i in range(7)]
    for name in names:
        created(api.admin, "advertisers", {"name": name})

    page = api.reporter.get(f"{API}/advertisers", params={"limit": 3}).json()
    assert set(page) == {"items", "total", "offset", "limit"}
    assert page["total"] == 9 and page["offset"] == 0 and page["limit"] == 3
    assert len(page["items"]) == 3

    # Pages tile the whole list without overlap.
    seen: list[int] = []
    for offset in range(0, 9, 4):
        window = api.reporter.get(
            f"{API}/advertisers", params={"offset": offset, "limit": 4}
        ).json()
        seen += [item["id"] for item in window["items"]]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 9
    beyond = api.reporter.get(f"{API}/advertisers", params={"offset": 50}).json()
    assert beyond["items"] == [] and beyond["total"] == 9

    # Search by part of the name (any case), by code, and by id.
    zeta = api.reporter.get(f"{API}/advertisers", params={"q": "zeta"}).json()
    assert zeta["total"] == 7
    assert sorted(item["name"] for item in zeta["items"]) == names
    by_code = api.reporter.get(f"{API}/advertisers", params={"q": "acme-two"}).json()
    assert [item["id"] for item in by_code["items"]] == [second["advertiser"]["id"]]
    by_id = api.reporter.get(
        f"{API}/impression-trackers", params={"q": str(first["impression_tracker"]["id"])}
    ).json()
    assert [item["id"] for item in by_id["items"]] == [first["impression_tracker"]["id"]]

    # State.
    api.admin.patch(f"{API}/advertisers/{first['advertiser']['id']}", json={"state": "inactive"})
    inactive = api.reporter.get(f"{API}/advertisers", params={"state": "inactive"}).json()
    assert [item["id"] for item in inactive["items"]] == [first["advertiser"]["id"]]
    assert api.reporter.get(f"{API}/advertisers", params={"state": "active"}).json()["total"] == 8

    # Filters by parent.
    def ids(path: str, **params: Any) -> list[int]:
        response = api.reporter.get(f"{API}/{path}", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    adv_one = first["advertiser"]["id"]
    pub_two = second["publisher"]["id"]
    assert ids("line-items", advertiser_id=adv_one) == [first["line_item"]["id"]]
    assert ids("placements", publisher_id=pub_two) == [second["placement"]["id"]]
    assert ids("payment-rules", publisher_id=pub_two, is_base="false") == [
        second["payment_rule"]["id"]
    ]
    assert len(ids("payment-rules", pricing_type="revshare")) == 2  # the two base rules
    assert ids("impression-trackers", advertiser_id=adv_one) == [first["impression_tracker"]["id"]]
    assert ids("click-trackers", line_item_id=second["line_item"]["id"]) == [
        second["click_tracker"]["id"]
    ]
    assert ids("click-trackers", placement_id=first["placement"]["id"]) == [
        first["click_tracker"]["id"]
    ]
    assert ids("impression-trackers", payment_rule_id=second["payment_rule"]["id"]) == [
        second["impression_tracker"]["id"]
    ]
    # Each tracker list shows only its own type.
    assert sorted(ids("impression-trackers")) == sorted(
        [first["impression_tracker"]["id"], second["impression_tracker"]["id"]]
    )
    assert sorted(ids("click-trackers", publisher_id=pub_two)) == [second["click_tracker"]["id"]]


def test_trackers_of_the_other_type_are_not_found(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    imp_id = chain["impression_tracker"]["id"]
    clk_id = chain["click_tracker"]["id"]
    assert api.admin.get(f"{API}/click-trackers/{imp_id}").status_code == 404
    assert api.admin.get(f"{API}/impression-trackers/{clk_id}").status_code == 404
    assert api.admin.patch(f"{API}/click-trackers/{imp_id}", json={"name": "x"}).status_code == 404
    assert api.admin.delete(f"{API}/impression-trackers/{clk_id}").status_code == 404


def test_delete_answers_204_and_the_object_is_gone(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    # Children first: trackers, then what they used.
    order = [
        "impression_tracker",
        "click_tracker",
        "payment_rule",
        "placement",
        "publisher",
        "line_item",
        "advertiser",
    ]
    for key in order:
        path = CHAIN_PATHS[key]
        obj_id = chain[key]["id"]
        response = api.trafficker.delete(f"{API}/{path}/{obj_id}")
        assert response.status_code == 204, response.text
        assert response.content == b""
        gone = api.reporter.get(f"{API}/{path}/{obj_id}")
        assert gone.status_code == 404
        assert gone.json()["detail"][0]["field"] == "id"
        assert obj_id not in [i["id"] for i in api.reporter.get(f"{API}/{path}").json()["items"]]
        assert api.trafficker.delete(f"{API}/{path}/{obj_id}").status_code == 404


def test_deactivating_keeps_the_object_listed(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    imp_id = chain["impression_tracker"]["id"]
    response = api.admin.patch(f"{API}/impression-trackers/{imp_id}", json={"state": "inactive"})
    assert response.json()["state"] == "inactive"
    listed = api.admin.get(f"{API}/impression-trackers", params={"state": "inactive"}).json()
    assert [item["id"] for item in listed["items"]] == [imp_id]


def test_advertiser_landing_domains_and_redirect_policy(api: ApiTestbed) -> None:
    client = api.trafficker
    made = created(
        client,
        "advertisers",
        {
            "name": "Acme",
            "landing_domains": [
                "Shop.Example.",
                "*.acme.example",
                "shop.example",
                "bücher.example",
            ],
            "redirect_policy": "allow-list",
        },
    )
    # normalised (lower-case, no trailing dot, IDNA), duplicates dropped, order kept
    assert made["landing_domains"] == ["shop.example", "*.acme.example", "xn--bcher-kva.example"]
    assert made["redirect_policy"] == "allow-list"
    url = f"{API}/advertisers/{made['id']}"
    assert api.reporter.get(url).json() == made

    # a plain PATCH of another field keeps them; null clears
    assert client.patch(url, json={"name": "Acme 2"}).json()["landing_domains"] == [
        "shop.example",
        "*.acme.example",
        "xn--bcher-kva.example",
    ]
    cleared = client.patch(url, json={"landing_domains": None, "redirect_policy": None}).json()
    assert (cleared["landing_domains"], cleared["redirect_policy"]) == ([], None)
    assert client.patch(url, json={"redirect_policy": "open"}).json()["redirect_policy"] == "open"
    # other kinds do not have these fields
    assert "landing_domains" not in created(client, "publishers", {"name": "P"})

    bad = {
        "https://shop.example/": "landing_domains[1]",
        "shop.example:8443": "landing_domains[1]",
        "user@shop.example": "landing_domains[1]",
        "shop example": "landing_domains[1]",
        "*": "landing_domains[1]",
        "*.com": "landing_domains[1]",
        "-bad-.example": "landing_domains[1]",
        "a..example": "landing_domains[1]",
        "": "landing_domains[1]",
    }
    for pattern, field in bad.items():
        answer = client.patch(url, json={"landing_domains": ["ok.example", pattern]})
        assert answer.status_code == 422, pattern
        assert answer.json()["detail"][0]["field"] == field, (pattern, answer.json())
    too_many = client.patch(url, json={"landing_domains": [f"h{i}.example" for i in range(101)]})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "landing_domains"
    not_a_list = client.patch(url, json={"landing_domains": "shop.example"})
    assert not_a_list.status_code == 422
    assert not_a_list.json()["detail"][0]["field"] == "landing_domains"
    policy = client.patch(url, json={"redirect_policy": "everything"})
    assert policy.status_code == 422
    assert policy.json()["detail"][0]["field"] == "redirect_policy"
    assert api.reporter.get(url).json()["redirect_policy"] == "open"


def test_advertiser_conversion_cookies(api: ApiTestbed) -> None:
    client = api.trafficker
    made = created(client, "advertisers", {"name": "Cookies"})
    assert made["conversion_cookies"] is False  # off unless asked for
    url = f"{API}/advertisers/{made['id']}"
    assert client.patch(url, json={"conversion_cookies": True}).json()["conversion_cookies"] is True
    assert client.patch(url, json={"name": "Cookies 2"}).json()["conversion_cookies"] is True
    for bad in ("yes", 1, None):
        refused = client.patch(url, json={"conversion_cookies": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["detail"][0]["field"] == "conversion_cookies"
    assert api.reporter.get(url).json()["conversion_cookies"] is True
    assert "conversion_cookies" not in created(client, "publishers", {"name": "P"})
