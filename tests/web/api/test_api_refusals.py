"""Every refusal of the catalogue, through HTTP: a 4xx whose JSON names the field at fault,
and never a 500 for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adtrack.web.state import state_of
from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    created,
    error_fields,
    make_testbed,
)


def _two_chains(api: ApiTestbed) -> dict[str, dict[str, Any]]:
    """Two complete chains; the second one's objects are "of another" advertiser/publisher."""
    first = create_chain(api.admin)
    other = create_chain(api.admin, "-other")
    return {**first, **{f"other_{key}": value for key, value in other.items()}}


# Refusals change nothing, so most tests share one database per module; the few tests that
# change the catalogue on purpose use the fresh_* fixtures.
@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiTestbed]:
    folder = tmp_path_factory.mktemp("refusals")
    yield from make_testbed(f"sqlite:///{folder / 'adtrack.db'}", folder)


@pytest.fixture(scope="module")
def chain(api: ApiTestbed) -> dict[str, dict[str, Any]]:
    made = _two_chains(api)
    api.app.state.version_after_setup = state_of(api.app).services.catalogue.catalogue_version()
    return made


@pytest.fixture
def fresh_api(sqlite_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    yield from make_testbed(sqlite_url, tmp_path)


@pytest.fixture
def fresh_chain(fresh_api: ApiTestbed) -> dict[str, dict[str, Any]]:
    return _two_chains(fresh_api)


def tracker_body(chain: dict[str, dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "New tracker",
        "line_item_id": chain["line_item"]["id"],
        "publisher_id": chain["publisher"]["id"],
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def assert_refused(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert field in error_fields(response), response.text


# --- names, codes, states ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["advertisers", "publishers", "impression-trackers", "click-trackers"]
)
@pytest.mark.parametrize("name", ["", "   ", "x" * 256, "line\nbreak", "nul\x00byte", 42, None])
def test_bad_names_are_refused(
    api: ApiTestbed, chain: dict[str, dict[str, Any]], path: str, name: object
) -> None:
    body = tracker_body(chain, name=name) if "trackers" in path else {"name": name}
    assert_refused(api.admin.post(f"{API}/{path}", json=body), 422, "name")


def test_a_missing_name_is_required(api: ApiTestbed) -> None:
    response = api.admin.post(f"{API}/advertisers", json={"code": "X"})
    assert_refused(response, 422, "name")
    assert "required" in response.json()["detail"][0]["message"]


def test_a_name_cannot_be_patched_to_null_or_empty(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    advertiser_id = chain["advertiser"]["id"]
    for name in (None, ""):
        response = api.admin.patch(f"{API}/advertisers/{advertiser_id}", json={"name": name})
        assert_refused(response, 422, "name")


@pytest.mark.parametrize("code", ["with space", "x" * 101, "tab\there", 7])
def test_bad_codes_are_refused(api: ApiTestbed, code: object) -> None:
    assert_refused(
        api.admin.post(f"{API}/advertisers", json={"name": "A", "code": code}), 422, "code"
    )


@pytest.mark.parametrize("state", ["paused", "", None, 1])
def test_bad_states_are_refused(api: ApiTestbed, state: object) -> None:
    response = api.admin.post(f"{API}/advertisers", json={"name": "A", "state": state})
    assert_refused(response, 422, "state")


# --- references -------------------------------------------------------------------------------


def test_line_item_needs_a_live_advertiser(
    fresh_api: ApiTestbed, fresh_chain: dict[str, dict[str, Any]]
) -> None:
    assert_refused(
        fresh_api.admin.post(f"{API}/line-items", json={"name": "LI"}), 422, "advertiser_id"
    )
    unknown = fresh_api.admin.post(f"{API}/line-items", json={"name": "LI", "advertiser_id": 99999})
    assert_refused(unknown, 422, "advertiser_id")
    lonely = created(fresh_api.admin, "advertisers", {"name": "Soon gone"})
    assert fresh_api.admin.delete(f"{API}/advertisers/{lonely['id']}").status_code == 204
    deleted = fresh_api.admin.post(
        f"{API}/line-items", json={"name": "LI", "advertiser_id": lonely["id"]}
    )
    assert_refused(deleted, 422, "advertiser_id")


def test_placement_and_payment_rule_need_a_live_publisher(api: ApiTestbed) -> None:
    for path in ("placements", "payment-rules"):
        assert_refused(api.admin.post(f"{API}/{path}", json={"name": "X"}), 422, "publisher_id")
        unknown = api.admin.post(f"{API}/{path}", json={"name": "X", "publisher_id": 4242})
        assert_refused(unknown, 422, "publisher_id")


@pytest.mark.parametrize("path", ["impression-trackers", "click-trackers"])
def test_tracker_reference_rules(
    fresh_api: ApiTestbed, fresh_chain: dict[str, dict[str, Any]], path: str
) -> None:
    post = lambda **kw: fresh_api.admin.post(f"{API}/{path}", json=tracker_body(fresh_chain, **kw))  # noqa: E731
    # Required references.
    assert_refused(post(line_item_id=...), 422, "line_item_id")
    assert_refused(post(publisher_id=...), 422, "publisher_id")
    # Unknown objects.
    assert_refused(post(line_item_id=99999), 422, "line_item_id")
    assert_refused(post(publisher_id=99999), 422, "publisher_id")
    assert_refused(post(placement_id=99999), 422, "placement_id")
    assert_refused(post(payment_rule_id=99999), 422, "payment_rule_id")
    # The line item must belong to the tracker's advertiser.
    mismatch = post(advertiser_id=fresh_chain["other_advertiser"]["id"])
    assert mismatch.status_code == 422, mismatch.text
    assert set(error_fields(mismatch)) & {"line_item_id", "advertiser_id"}
    # Placement and payment rule must belong to the tracker's publisher.
    assert_refused(post(placement_id=fresh_chain["other_placement"]["id"]), 422, "placement_id")
    assert_refused(
        post(payment_rule_id=fresh_chain["other_payment_rule"]["id"]), 422, "payment_rule_id"
    )
    # Deleted objects are gone.
    assert (
        fresh_api.admin.delete(
            f"{API}/impression-trackers/{fresh_chain['other_impression_tracker']['id']}"
        ).status_code
        == 204
    )
    assert (
        fresh_api.admin.delete(
            f"{API}/click-trackers/{fresh_chain['other_click_tracker']['id']}"
        ).status_code
        == 204
    )
    assert (
        fresh_api.admin.delete(
            f"{API}/placements/{fresh_chain['other_placement']['id']}"
        ).status_code
        == 204
    )
    other_pub_post = lambda **kw: fresh_api.admin.post(  # noqa: E731
        f"{API}/{path}",
        json=tracker_body(fresh_chain, publisher_id=fresh_chain["other_publisher"]["id"], **kw),
    )
    assert_refused(
        other_pub_post(placement_id=fresh_chain["other_placement"]["id"]), 422, "placement_id"
    )
    # Wrong JSON types for ids.
    assert_refused(post(line_item_id="1"), 422, "line_item_id")
    assert_refused(post(publisher_id=True), 422, "publisher_id")
    assert_refused(post(placement_id=1.5), 422, "placement_id")
    assert_refused(post(placement_id=0), 422, "placement_id")
    assert_refused(post(placement_id=2**40), 422, "placement_id")


def test_moving_a_tracker_onto_another_publishers_placement_is_refused(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    tracker_id = chain["impression_tracker"]["id"]
    response = api.admin.patch(
        f"{API}/impression-trackers/{tracker_id}",
        json={"placement_id": chain["other_placement"]["id"]},
    )
    assert_refused(response, 422, "placement_id")
    response = api.admin.patch(
        f"{API}/impression-trackers/{tracker_id}",
        json={
            "line_item_id": chain["other_line_item"]["id"],
            "advertiser_id": chain["advertiser"]["id"],
        },
    )
    assert response.status_code == 422
    assert set(error_fields(response)) & {"line_item_id", "advertiser_id"}


def test_tracker_codes_are_unique_per_type(
    fresh_api: ApiTestbed, fresh_chain: dict[str, dict[str, Any]]
) -> None:
    taken = fresh_chain["impression_tracker"]["code"]
    duplicate = fresh_api.admin.post(
        f"{API}/impression-trackers", json=tracker_body(fresh_chain, code=taken)
    )
    assert_refused(duplicate, 409, "code")
    # The same code on a click tracker is fine: unique among trackers of its type.
    other_type = fresh_api.admin.post(
        f"{API}/click-trackers", json=tracker_body(fresh_chain, code=taken)
    )
    assert other_type.status_code == 201, other_type.text
    # Renaming onto a taken code is refused too.
    clk_id = fresh_chain["click_tracker"]["id"]
    renamed = fresh_api.admin.patch(f"{API}/click-trackers/{clk_id}", json={"code": taken})
    assert_refused(renamed, 409, "code")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "//example.com/no-scheme",
        "https://",
        "not a url",
        "https://exa mple.com/",
        "https://example.com/" + "x" * 2100,
        42,
    ],
)
def test_bad_landing_pages_are_refused(
    api: ApiTestbed, chain: dict[str, dict[str, Any]], url: object
) -> None:
    response = api.admin.post(
        f"{API}/click-trackers", json=tracker_body(chain, landing_page_url=url)
    )
    assert_refused(response, 422, "landing_page_url")
    clk_id = chain["click_tracker"]["id"]
    patched = api.admin.patch(f"{API}/click-trackers/{clk_id}", json={"landing_page_url": url})
    assert_refused(patched, 422, "landing_page_url")


def test_impression_trackers_have_no_landing_page(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    body = tracker_body(chain, landing_page_url="https://example.com/")
    assert_refused(api.admin.post(f"{API}/impression-trackers", json=body), 422, "landing_page_url")
    imp_id = chain["impression_tracker"]["id"]
    patched = api.admin.patch(
        f"{API}/impression-trackers/{imp_id}", json={"landing_page_url": "https://example.com/"}
    )
    assert_refused(patched, 422, "landing_page_url")


@pytest.mark.parametrize("field", ["tracker_type", "id", "created_at", "last_modified", "colour"])
def test_unknown_and_read_only_fields_are_refused(
    api: ApiTestbed, chain: dict[str, dict[str, Any]], field: str
) -> None:
    body = tracker_body(chain, **{field: "click"})
    assert_refused(api.admin.post(f"{API}/impression-trackers", json=body), 422, field)
    imp_id = chain["impression_tracker"]["id"]
    patched = api.admin.patch(f"{API}/impression-trackers/{imp_id}", json={field: "x"})
    assert_refused(patched, 422, field)


# --- line items and payment rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"revenue_type": "cpa"}, "revenue_type"),
        ({"revenue_value": -1}, "revenue_value"),
        ({"revenue_value": None}, "revenue_value"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2024-13-01"}, "end_date"),
        ({"start_date": "2024-06-01", "end_date": "2024-05-01"}, "end_date"),
        ({"start_date": "2024-06-01", "end_date": "2024-06-01"}, "end_date"),
        ({"advertiser_id": None}, "advertiser_id"),
    ],
)
def test_line_item_refusals(
    api: ApiTestbed, chain: dict[str, dict[str, Any]], changes: dict[str, Any], field: str
) -> None:
    body = {"name": "LI", "advertiser_id": chain["advertiser"]["id"], **changes}
    assert_refused(api.admin.post(f"{API}/line-items", json=body), 422, field)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pricing_type": "cpa"}, "pricing_type"),
        ({"revshare": 1.5}, "revshare"),
        ({"revshare": -0.1}, "revshare"),
        ({"revshare": 0.0000001}, "revshare"),
        ({"priority": 0}, "priority"),
        ({"priority": 11}, "priority"),
        ({"priority": "5"}, "priority"),
        ({"priority": 5.5}, "priority"),
        ({"advertiser_filter": "maybe"}, "advertiser_filter"),
        ({"advertiser_filter": "include", "advertiser_ids": [99999]}, "advertiser_ids"),
        ({"advertiser_ids": [1]}, "advertiser_filter"),
        ({"advertiser_filter": "include", "advertiser_ids": "1,2"}, "advertiser_ids"),
        ({"line_item_filter": "exclude", "line_item_ids": [99999]}, "line_item_ids"),
        ({"is_base": True}, "is_base"),
        ({"start_date": "2024-06-01", "end_date": "2024-01-01"}, "end_date"),
    ],
)
def test_payment_rule_refusals(
    api: ApiTestbed, chain: dict[str, dict[str, Any]], changes: dict[str, Any], field: str
) -> None:
    body = {"name": "Rule", "publisher_id": chain["publisher"]["id"], **changes}
    response = api.admin.post(f"{API}/payment-rules", json=body)
    assert response.status_code in (409, 422), response.text
    assert any(f and f.split("[")[0] == field for f in error_fields(response)), response.text


def test_deleting_what_trackers_use_is_refused_with_the_blockers(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    imp = chain["impression_tracker"]
    clk = chain["click_tracker"]
    for path, key in (
        ("advertisers", "advertiser"),
        ("line-items", "line_item"),
        ("publishers", "publisher"),
        ("placements", "placement"),
        ("payment-rules", "payment_rule"),
    ):
        response = api.admin.delete(f"{API}/{path}/{chain[key]['id']}")
        assert response.status_code == 409, response.text
        body = response.json()
        assert body["detail"][0]["field"] == "id"
        tracker_ids = {b["id"] for b in body["blockers"] if b["kind"] == "tracker"}
        assert imp["id"] in tracker_ids or clk["id"] in tracker_ids
        # Still there.
        assert api.admin.get(f"{API}/{path}/{chain[key]['id']}").status_code == 200


# --- malformed requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"name": "x",', "application/json", 400),
        (b"{'name': 'x'}", "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"name": 1' + b"0" * 5000 + b"}", "application/json", 400),
        (b"", "application/json", 422),
        (b"[]", "application/json", 422),
        (b'"a string"', "application/json", 422),
        (b"null", "application/json", 422),
        (b"name=x", "application/x-www-form-urlencoded", 422),
        (b'{"name": "x"}', "text/plain", 422),
    ],
)
def test_malformed_bodies_name_the_body(
    api: ApiTestbed, content: bytes, content_type: str, status: int
) -> None:
    response = api.admin.post(
        f"{API}/advertisers", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    assert error_fields(response) == ["body"] or (
        status == 400 and "body" in error_fields(response)
    ), response.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 100_000}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**64}, "offset"),
        ({"state": "paused"}, "state"),
        ({"q": "x" * 300}, "q"),
        ({"q": "nul\x00"}, "q"),
        ({"advertiser_id": "abc"}, "advertiser_id"),
        ({"advertiser_id": 0}, "advertiser_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_list_parameters_name_the_parameter(
    api: ApiTestbed, query: dict[str, Any], field: str
) -> None:
    path = "line-items" if "advertiser_id" in query else "advertisers"
    assert_refused(api.reporter.get(f"{API}/{path}", params=query), 422, field)


def test_unknown_filters_are_refused_per_resource(api: ApiTestbed) -> None:
    # advertisers have no advertiser_id filter, placements no advertiser_id either.
    for path in ("advertisers", "publishers", "placements"):
        response = api.reporter.get(f"{API}/{path}", params={"advertiser_id": 1})
        assert_refused(response, 422, "advertiser_id")


@pytest.mark.parametrize("raw_id", ["0", "-3", "abc", "1.5", str(2**31), str(2**70)])
def test_bad_ids_in_the_url_are_refused(api: ApiTestbed, raw_id: str) -> None:
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"json": {}} if method == "patch" else {}
        response = getattr(api.admin, method)(f"{API}/advertisers/{raw_id}", **kwargs)
        assert_refused(response, 422, "id")


def test_unknown_ids_are_404_naming_the_id(api: ApiTestbed) -> None:
    for path in ("advertisers", "line-items", "payment-rules", "click-trackers"):
        response = api.admin.get(f"{API}/{path}/123456")
        assert_refused(response, 404, "id")
        assert_refused(api.admin.patch(f"{API}/{path}/123456", json={"name": "x"}), 404, "id")


def test_unknown_paths_and_methods_answer_in_the_same_shape(api: ApiTestbed) -> None:
    missing = api.admin.get(f"{API}/nothing-here")
    assert missing.status_code == 404
    assert error_fields(missing) == [None]
    wrong_method = api.admin.put(f"{API}/advertisers/1", json={"name": "x"})
    assert wrong_method.status_code == 405
    assert error_fields(wrong_method) == [None]


def test_no_refusal_wrote_anything(api: ApiTestbed, chain: dict[str, dict[str, Any]]) -> None:
    """Runs last in this module: every write bumps the catalogue version, refusals roll back."""
    assert (
        state_of(api.app).services.catalogue.catalogue_version()
        == api.app.state.version_after_setup
    )
