"""The compatible API driven the way the platform's documentation drives it with curl:
authenticate, create a tracker with ``POST /imptracker?advertiser_id=``, modify it with PUT,
view one and several, page, delete; its errors and its token's expiry. On SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from adtrack.adapters.sql.tables import console_sessions
from adtrack.domain.model import Role
from adtrack.services.xandr.objects import XandrKind, from_xandr
from tests.services.xandr import documented_objects as doc
from tests.support.api_fixtures import ApiTestbed, create_chain, created, make_testbed

X = "/xandr"
PASSWORD = "correct horse"  # the test bed's users' password


def _auth(api: ApiTestbed, role: Role = Role.TRAFFICKER) -> TestClient:
    """A client signed in through ``POST /auth``, sending the token as the bare header."""
    client = TestClient(api.app)
    response = client.post(
        f"{X}/auth", json={"auth": {"username": f"{role.value}@example.com", "password": PASSWORD}}
    )
    assert response.status_code == 200, response.text
    token = response.json()["response"]["token"]
    return TestClient(api.app, headers={"Authorization": token})


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["response"]
    assert body["status"] == "OK"
    assert isinstance(body["dbg_info"], dict)
    return body


def _error(response: Any, status: int, error_id: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["response"]
    assert body["error_id"] == error_id, body
    assert isinstance(body["error"], str) and body["error"]
    assert "status" not in body
    message: str = body["error"]
    return message


@pytest.fixture
def chain(api: ApiTestbed) -> dict[str, dict[str, Any]]:
    return create_chain(api.trafficker)


def _new_imptracker(
    chain: dict[str, dict[str, Any]], name: str = "Test Impression Tracker"
) -> dict[str, Any]:
    return {
        "imptracker": {
            "name": name,
            "publisher": {"id": chain["publisher"]["id"]},
            "line_item": {"id": chain["line_item"]["id"]},
        }
    }


def _post_imptracker(
    client: TestClient, chain: dict[str, dict[str, Any]], name: str = "Test Impression Tracker"
) -> dict[str, Any]:
    advertiser_id = chain["advertiser"]["id"]
    return _ok(
        client.post(
            f"{X}/imptracker?advertiser_id={advertiser_id}", json=_new_imptracker(chain, name)
        )
    )


# --- authentication ----------------------------------------------------------------------------


def test_auth_answers_a_token_taken_as_header_and_as_cookie(api: ApiTestbed) -> None:
    client = TestClient(api.app)
    response = client.post(
        f"{X}/auth", json={"auth": {"username": "reporter@example.com", "password": PASSWORD}}
    )

    body = _ok(response)
    token = body["token"]
    assert isinstance(token, str) and len(token) >= 32
    set_cookie = response.headers["set-cookie"]
    assert "httponly" in set_cookie.lower()
    assert "samesite=strict" in set_cookie.lower()
    assert "path=/xandr" in set_cookie.lower()
    # curl -b cookies: the same client replays the cookie.
    assert _ok(client.get(f"{X}/advertiser"))["count"] == 0
    # -H "Authorization: TOKEN"
    bare = TestClient(api.app, headers={"Authorization": token})
    assert _ok(bare.get(f"{X}/advertiser"))["count"] == 0


def test_adtracks_own_api_tokens_are_taken_too(api: ApiTestbed) -> None:
    token = api.tokens[Role.REPORTER]

    for header in (token, f"Bearer {token}"):
        client = TestClient(api.app, headers={"Authorization": header})
        _ok(client.get(f"{X}/imptracker"))


def test_wrong_password_is_noauth(api: ApiTestbed) -> None:
    response = TestClient(api.app).post(
        f"{X}/auth", json={"auth": {"username": "admin@example.com", "password": "Wr0ngP@ss"}}
    )

    assert _error(response, 401, "NOAUTH") == "No match found for user/pass"
    assert response.json()["response"]["service"] == "auth"
    assert "set-cookie" not in response.headers


def test_deactivated_user_is_noauth_disabled(api: ApiTestbed) -> None:
    user = api.users.create_user("gone@example.com", Role.TRAFFICKER, PASSWORD).user
    api.users.update_user(user.id, {"state": "inactive"})

    response = TestClient(api.app).post(
        f"{X}/auth", json={"auth": {"username": "gone@example.com", "password": PASSWORD}}
    )

    _error(response, 401, "NOAUTH_DISABLED")


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"auth": "x"}', b'{"auth": {"username": "a@example.com"}}', b"[]"],
)
def test_malformed_auth_is_syntax(api: ApiTestbed, body: bytes) -> None:
    response = TestClient(api.app).post(f"{X}/auth", content=body)

    _error(response, 400, "SYNTAX")


def test_calls_without_a_live_token_are_noauth(api: ApiTestbed) -> None:
    _error(TestClient(api.app).get(f"{X}/imptracker"), 401, "NOAUTH")
    unknown = TestClient(api.app, headers={"Authorization": "h20hbtptiv3vlp1rkm3ve1qig0"})
    _error(unknown.get(f"{X}/imptracker"), 401, "NOAUTH")


def test_sign_in_throttle_applies(tmp_path: Path, sqlite_url: str) -> None:
    env = {"ADTRACK_COMPAT_API": "xandr", "ADTRACK_LOGIN_MAX_FAILURES": "2"}
    for api in make_testbed(sqlite_url, tmp_path, env):
        client = TestClient(api.app)
        wrong = {"auth": {"username": "admin@example.com", "password": "nope"}}
        _error(client.post(f"{X}/auth", json=wrong), 401, "NOAUTH")
        locked = client.post(f"{X}/auth", json=wrong)
        _error(locked, 429, "SYSTEM")
        assert int(locked.headers["retry-after"]) > 0
        right = {"auth": {"username": "admin@example.com", "password": PASSWORD}}
        _error(client.post(f"{X}/auth", json=right), 429, "SYSTEM")


def _session_expiry(api: ApiTestbed) -> datetime:
    with api.engine.connect() as conn:
        value = conn.execute(select(console_sessions.c.expires_at)).scalar_one()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _set_session_expiry(api: ApiTestbed, at: datetime) -> None:
    with api.engine.begin() as conn:
        conn.execute(update(console_sessions).values(expires_at=at))


def test_the_token_lives_two_hours_after_the_last_call(api: ApiTestbed) -> None:
    client = _auth(api)
    now = datetime.now(UTC)
    assert abs(_session_expiry(api) - (now + timedelta(hours=2))) < timedelta(minutes=1)

    # A call moves the expiry to two hours from now again.
    _set_session_expiry(api, now + timedelta(minutes=10))
    _ok(client.get(f"{X}/imptracker"))
    assert _session_expiry(api) > now + timedelta(hours=1, minutes=59)

    # Two hours without a call: gone.
    _set_session_expiry(api, now - timedelta(seconds=1))
    _error(client.get(f"{X}/imptracker"), 401, "NOAUTH")


def test_the_token_ends_with_the_users_sessions(api: ApiTestbed) -> None:
    client = _auth(api)
    user = api.users.get_user_by_email("trafficker@example.com")

    api.users.revoke_sessions(user.id)

    _error(client.get(f"{X}/imptracker"), 401, "NOAUTH")


def test_compatible_api_is_off_by_default(sqlite_url: str, tmp_path: Path) -> None:
    for api in make_testbed(sqlite_url, tmp_path):
        response = TestClient(api.app).post(
            f"{X}/auth", json={"auth": {"username": "admin@example.com", "password": PASSWORD}}
        )
        assert response.status_code == 404


# --- trackers: the documentation's examples ---------------------------------------------------


def test_create_modify_view_and_delete_an_impression_tracker(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api)
    advertiser, line_item = chain["advertiser"], chain["line_item"]
    publisher, placement = chain["publisher"], chain["placement"]

    # Creating a new impression tracker
    body = _post_imptracker(client, chain)
    tracker = body["imptracker"]
    assert body["count"] == 1
    assert body["id"] == tracker["id"]
    assert (body["start_element"], body["num_elements"]) == (0, 100)
    assert tracker == {
        "id": tracker["id"],
        "member_id": 1,
        "advertiser_id": advertiser["id"],
        "name": "Test Impression Tracker",
        "code": None,
        "state": "active",
        "last_modified": tracker["last_modified"],
        "publisher": {"id": publisher["id"], "name": publisher["name"]},
        "tag": None,
        "payment_rule": None,
        "line_item": {"id": line_item["id"], "name": line_item["name"]},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", tracker["last_modified"])

    # Updating an impression tracker: associate a placement
    updated = _ok(
        client.put(
            f"{X}/imptracker?id={tracker['id']}",
            json={"imptracker": {"tag": {"id": placement["id"]}}},
        )
    )["imptracker"]
    assert updated["tag"] == [{"id": placement["id"], "name": placement["name"]}]
    assert updated["name"] == "Test Impression Tracker"

    # Viewing impression tracker N
    viewed = _ok(client.get(f"{X}/imptracker?id={tracker['id']}"))
    assert viewed["count"] == 1
    assert viewed["imptracker"] == updated

    # It is adtrack's tracker: the management API sees the same.
    own = api.reporter.get(f"/api/v1/impression-trackers/{tracker['id']}").json()
    assert own["placement_id"] == placement["id"]
    assert own["line_item_id"] == line_item["id"]

    # Deleting it
    deleted = _ok(client.delete(f"{X}/imptracker?id={tracker['id']}"))
    assert set(deleted) == {"status", "dbg_info"}
    _error(client.get(f"{X}/imptracker?id={tracker['id']}"), 404, "NOTFOUND")


def test_view_several_and_all_of_an_advertiser(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api)
    first = _post_imptracker(client, chain, "Test Impression Tracker 1")["id"]
    second = _post_imptracker(client, chain, "Test Impression Tracker 2")["id"]
    other = create_chain(api.trafficker, "-b")
    _post_imptracker(client, other, "Someone else's")

    several = _ok(client.get(f"{X}/imptracker?id={first},{second},999999"))
    assert several["count"] == 2
    assert [t["name"] for t in several["imptrackers"]] == [
        "Test Impression Tracker 1",
        "Test Impression Tracker 2",
    ]

    of_advertiser = _ok(client.get(f"{X}/imptracker?advertiser_id={chain['advertiser']['id']}"))
    # create_chain made one impression tracker of its own for the advertiser.
    assert of_advertiser["count"] == 3
    assert {t["advertiser_id"] for t in of_advertiser["imptrackers"]} == {chain["advertiser"]["id"]}


def test_paging_with_start_element_and_num_elements(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api)
    for index in range(4):
        _post_imptracker(client, chain, f"Tracker {index}")

    everything = _ok(client.get(f"{X}/imptracker"))
    assert everything["count"] == 5
    assert (everything["start_element"], everything["num_elements"]) == (0, 100)
    ids = [t["id"] for t in everything["imptrackers"]]

    page = _ok(client.get(f"{X}/imptracker?start_element=2&num_elements=2"))
    assert page["count"] == 5
    assert (page["start_element"], page["num_elements"]) == (2, 2)
    assert [t["id"] for t in page["imptrackers"]] == ids[2:4]

    # The maximum is 100, as on the platform.
    assert _ok(client.get(f"{X}/imptracker?num_elements=5000"))["num_elements"] == 100
    beyond = _ok(client.get(f"{X}/imptracker?start_element=50"))
    assert (beyond["count"], beyond["imptrackers"]) == (5, [])
    several = _ok(client.get(f"{X}/imptracker?id={','.join(map(str, ids))}&num_elements=2"))
    assert several["count"] == 5
    assert [t["id"] for t in several["imptrackers"]] == sorted(ids)[:2]


def test_click_tracker_round_trip(api: ApiTestbed, chain: dict[str, dict[str, Any]]) -> None:
    """JSON created through the compatible API comes back with the same fields."""
    client = _auth(api)
    sent = {
        "name": "Test Click Tracker",
        "code": "clk-fr-1",
        "state": "inactive",
        "click_url": "https://test-landing-page.com",
        "publisher": {"id": chain["publisher"]["id"]},
        "tag": [{"id": chain["placement"]["id"]}],
        "payment_rule": {"id": chain["payment_rule"]["id"]},
        "line_item": {"id": chain["line_item"]["id"]},
    }

    created_body = _ok(
        client.post(
            f"{X}/clicktracker?advertiser_id={chain['advertiser']['id']}",
            json={"clicktracker": sent},
        )
    )
    back = _ok(client.get(f"{X}/clicktracker?id={created_body['id']}"))["clicktracker"]

    assert back == created_body["clicktracker"]
    for key in ("name", "code", "state", "click_url"):
        assert back[key] == sent[key]
    for key in ("publisher", "payment_rule", "line_item"):
        assert back[key]["id"] == sent[key]["id"]
        assert back[key]["name"]
    assert [tag["id"] for tag in back["tag"]] == [chain["placement"]["id"]]
    assert back["advertiser_id"] == chain["advertiser"]["id"]
    # Sending it back unchanged (as a script that edits a field would) changes nothing.
    again = _ok(client.put(f"{X}/clicktracker?id={back['id']}", json={"clicktracker": back}))
    assert again["clicktracker"] == back


def test_a_second_tag_is_a_warning_not_an_error(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api)
    tracker = _post_imptracker(client, chain)["imptracker"]
    placement = chain["placement"]["id"]

    body = _ok(
        client.put(
            f"{X}/imptracker?id={tracker['id']}",
            json={"imptracker": {"tag": [{"id": placement}, {"id": 424242}]}},
        )
    )

    assert body["imptracker"]["tag"][0]["id"] == placement
    assert any("424242" in warning for warning in body["dbg_info"]["warnings"])


def test_money_and_ids_keep_the_tracker_of_its_type(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api)
    click_id = chain["click_tracker"]["id"]

    _error(client.get(f"{X}/imptracker?id={click_id}"), 404, "NOTFOUND")
    assert _ok(client.get(f"{X}/clicktracker?id={click_id}"))["clicktracker"]["id"] == click_id


# --- errors ---------------------------------------------------------------------------------------


def test_refusals_name_the_field_in_the_platforms_error_shape(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api)
    advertiser_id = chain["advertiser"]["id"]
    no_publisher = {"imptracker": {"name": "T", "line_item": {"id": chain["line_item"]["id"]}}}

    message = _error(
        client.post(f"{X}/imptracker?advertiser_id={advertiser_id}", json=no_publisher),
        400,
        "SYNTAX",
    )
    assert "publisher.id" in message
    no_name = _new_imptracker(chain, "")
    assert "name" in _error(client.post(f"{X}/imptracker", json=no_name), 400, "SYNTAX")
    unknown_line_item = {
        "imptracker": {"name": "T", "publisher": {"id": 1}, "line_item": {"id": 987654}}
    }
    assert "line_item" in _error(
        client.post(f"{X}/imptracker", json=unknown_line_item), 400, "SYNTAX"
    )
    bad_url = {
        "clicktracker": {**_new_imptracker(chain)["imptracker"], "click_url": "ftp://files.example"}
    }
    assert _error(client.post(f"{X}/clicktracker", json=bad_url), 400, "SYNTAX").startswith(
        "click_url:"
    )
    other_publisher = create_chain(api.trafficker, "-b")["placement"]["id"]
    wrong_tag = _new_imptracker(chain)
    wrong_tag["imptracker"]["tag"] = [{"id": other_publisher}]
    assert _error(client.post(f"{X}/imptracker", json=wrong_tag), 400, "SYNTAX").startswith("tag:")
    _error(client.post(f"{X}/imptracker", content=b"{nope"), 400, "SYNTAX")
    _error(client.post(f"{X}/imptracker", json={"clicktracker": {}}), 400, "SYNTAX")
    _error(client.get(f"{X}/imptracker?id=abc"), 400, "SYNTAX")
    _error(client.get(f"{X}/imptracker?num_elements=0"), 400, "SYNTAX")
    _error(client.get(f"{X}/imptracker?start_element=-1"), 400, "SYNTAX")
    _error(client.put(f"{X}/imptracker", json={"imptracker": {}}), 400, "SYNTAX")
    _error(client.delete(f"{X}/imptracker?id=1,2"), 400, "SYNTAX")
    _error(client.put(f"{X}/imptracker?id=987654", json={"imptracker": {}}), 404, "NOTFOUND")
    _error(client.get(f"{X}/creative"), 404, "NOTFOUND")
    denied = client.post(f"{X}/advertiser", json={"advertiser": {"name": "A"}})
    _error(denied, 405, "SYNTAX")
    assert denied.headers["allow"]


def test_duplicate_code_is_integrity(api: ApiTestbed, chain: dict[str, dict[str, Any]]) -> None:
    client = _auth(api)
    body = _new_imptracker(chain)
    body["imptracker"]["code"] = chain["impression_tracker"]["code"]

    _error(client.post(f"{X}/imptracker", json=body), 409, "INTEGRITY")


def test_reporters_read_but_do_not_write(api: ApiTestbed, chain: dict[str, dict[str, Any]]) -> None:
    reporter = _auth(api, Role.REPORTER)
    tracker_id = chain["impression_tracker"]["id"]

    _ok(reporter.get(f"{X}/imptracker?id={tracker_id}"))
    _error(reporter.post(f"{X}/imptracker", json=_new_imptracker(chain)), 403, "UNAUTH")
    _error(
        reporter.put(f"{X}/imptracker?id={tracker_id}", json={"imptracker": {"name": "x"}}),
        403,
        "UNAUTH",
    )
    _error(reporter.delete(f"{X}/imptracker?id={tracker_id}"), 403, "UNAUTH")


# --- the read-only services ---------------------------------------------------------------------


def test_catalogue_services_read_in_the_platforms_json(
    api: ApiTestbed, chain: dict[str, dict[str, Any]]
) -> None:
    client = _auth(api, Role.REPORTER)
    advertiser, line_item = chain["advertiser"], chain["line_item"]
    publisher, placement, rule = chain["publisher"], chain["placement"], chain["payment_rule"]

    got = _ok(client.get(f"{X}/advertiser?id={advertiser['id']}"))["advertiser"]
    assert (got["id"], got["name"], got["code"], got["state"]) == (
        advertiser["id"],
        "Acme",
        "ACME",
        "active",
    )

    items = _ok(client.get(f"{X}/line-item?advertiser_id={advertiser['id']}"))["line-items"]
    assert [item["id"] for item in items] == [line_item["id"]]
    assert items[0]["revenue_type"] == "cpm"
    assert items[0]["revenue_value"] == 2.5
    assert items[0]["start_date"] == "2024-05-01 00:00:00"
    assert items[0]["end_date"] == "2024-05-31 23:59:59"  # inclusive, as on the platform
    assert items[0]["advertiser"] == {"id": advertiser["id"], "name": "Acme"}

    got_publisher = _ok(client.get(f"{X}/publisher?id={publisher['id']}"))["publisher"]
    base = created(api.trafficker, "payment-rules", {"publisher_id": publisher["id"], "name": "x"})
    rules = api.reporter.get(f"/api/v1/payment-rules?publisher_id={publisher['id']}&is_base=true")
    assert got_publisher["base_payment_rule_id"] == rules.json()["items"][0]["id"]
    assert got_publisher["base_payment_rule_id"] != base["id"]

    placements = _ok(client.get(f"{X}/placement?publisher_id={publisher['id']}"))["placements"]
    assert [(p["id"], p["publisher_name"]) for p in placements] == [
        (placement["id"], publisher["name"])
    ]

    got_rule = _ok(client.get(f"{X}/payment-rule?id={rule['id']}"))["payment-rule"]
    assert got_rule["pricing_type"] == "cpm"
    assert got_rule["cost_cpm"] == 1.25
    assert got_rule["priority"] == 7
    assert got_rule["demand_filter_action"] == "include"
    assert got_rule["filtered_advertisers"] == [{"id": advertiser["id"], "name": "Acme"}]
    all_rules = _ok(client.get(f"{X}/payment-rule?publisher_id={publisher['id']}"))
    assert all_rules["count"] == 3  # the base rule, the chain's and the one made above


def test_tracker_filters_and_id_lists(api: ApiTestbed, chain: dict[str, dict[str, Any]]) -> None:
    client = _auth(api, Role.REPORTER)
    other = create_chain(api.trafficker, "-b")
    mine = chain["impression_tracker"]["id"]

    for name in ("line_item_id", "publisher_id"):
        key = name.removesuffix("_id")
        listed = _ok(client.get(f"{X}/imptracker?{name}={chain[key]['id']}"))["imptrackers"]
        assert [t["id"] for t in listed] == [mine]
    assert _ok(client.get(f"{X}/imptracker"))["count"] == 2
    assert other["impression_tracker"]["id"] != mine
    too_many = ",".join(str(n) for n in range(1, 102))
    assert "at most 100" in _error(client.get(f"{X}/imptracker?id={too_many}"), 400, "SYNTAX")


def test_objects_mapped_from_the_platform_come_back_with_the_same_fields(
    api: ApiTestbed,
) -> None:
    """Import -> compatible API: the documentation's objects, written to the catalogue through
    the one mapping, read back through /xandr/ give the same fields (ids translated)."""
    catalogue = api.app.state.web.services.catalogue
    ids: dict[tuple[XandrKind, int], int] = {}

    def translate(kind: XandrKind, id: int) -> int:
        return ids[(kind, id)]

    def load(kind: str, obj: dict[str, Any], kind_catalogue: Any, **context: Any) -> None:
        mapped = from_xandr(kind, obj, **context)
        entity = kind_catalogue.create(mapped.catalogue_values(translate))
        ids[(mapped.kind, obj["id"])] = entity.id

    tracker = doc.imptracker_with_tag()
    load(
        "advertiser",
        {"id": tracker["advertiser_id"], "name": "Advertiser B"},
        catalogue.advertisers,
    )
    load(
        "line-item",
        {**tracker["line_item"], "advertiser_id": tracker["advertiser_id"]},
        catalogue.line_items,
    )
    load("publisher", {**tracker["publisher"], "state": "active"}, catalogue.publishers)
    load(
        "placement",
        {**tracker["tag"], "publisher_id": tracker["publisher"]["id"]},
        catalogue.placements,
    )
    load("imptracker", {**tracker, "code": "imp_1425"}, catalogue.impression_trackers)

    client = _auth(api, Role.REPORTER)
    own_id = ids[(XandrKind.IMPTRACKER, tracker["id"])]
    back = _ok(client.get(f"{X}/imptracker?id={own_id}"))["imptracker"]

    assert set(back) == set(tracker)
    assert back["id"] == own_id
    assert back["advertiser_id"] == ids[(XandrKind.ADVERTISER, tracker["advertiser_id"])]
    assert (back["name"], back["code"], back["state"]) == (
        tracker["name"],
        "imp_1425",
        tracker["state"],
    )
    for key, kind in (("publisher", XandrKind.PUBLISHER), ("line_item", XandrKind.LINE_ITEM)):
        assert back[key] == {"id": ids[(kind, tracker[key]["id"])], "name": tracker[key]["name"]}
    assert back["tag"] == [
        {"id": ids[(XandrKind.PLACEMENT, tracker["tag"]["id"])], "name": tracker["tag"]["name"]}
    ]
    assert back["payment_rule"] is None
    own = api.reporter.get(f"/api/v1/impression-trackers/{own_id}").json()
    assert (own["original_id"], own["original_code"]) == (tracker["id"], "imp_1425")
