"""Authentication and roles on the management API: tokens, 401/403, user management."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adtrack.domain.model import Role
from tests.support.api_fixtures import API, ApiTestbed, bearer, create_chain, created

RESOURCES = [
    "advertisers",
    "line-items",
    "publishers",
    "placements",
    "payment-rules",
    "impression-trackers",
    "click-trackers",
]


def assert_unauthorized(response: object) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.headers["www-authenticate"] == "Bearer"  # type: ignore[attr-defined]
    assert response.json()["detail"][0]["field"] == "authorization"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", RESOURCES)
def test_no_token_is_401_everywhere(api: ApiTestbed, path: str) -> None:
    anonymous = api.anonymous
    assert_unauthorized(anonymous.get(f"{API}/{path}"))
    assert_unauthorized(anonymous.get(f"{API}/{path}/1"))
    assert_unauthorized(anonymous.post(f"{API}/{path}", json={"name": "x"}))
    assert_unauthorized(anonymous.patch(f"{API}/{path}/1", json={"name": "x"}))
    assert_unauthorized(anonymous.delete(f"{API}/{path}/1"))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-token",
        "Bearer ",
        "Bearer " + "x" * 5000,
        "Basic YWRtaW46cGFzc3dvcmQ=",
        "bearer",
        "Token abc",
    ],
)
def test_bad_tokens_are_401(api: ApiTestbed, header: str) -> None:
    client = TestClient(api.app, headers={"Authorization": header})
    assert_unauthorized(client.get(f"{API}/advertisers"))
    assert_unauthorized(client.get(f"{API}/me"))


def test_other_endpoints_need_no_token(api: ApiTestbed) -> None:
    assert api.anonymous.get("/healthz").json() == {"status": "ok"}
    spec = api.anonymous.get(f"{API}/openapi.json")
    assert spec.status_code == 200
    docs = api.anonymous.get("/docs")
    assert docs.status_code == 200
    assert f"{API}/openapi.json" in docs.text


def test_the_openapi_document_describes_the_api(api: ApiTestbed) -> None:
    spec = api.anonymous.get(f"{API}/openapi.json").json()
    paths = spec["paths"]
    for resource in RESOURCES:
        assert set(paths[f"{API}/{resource}"]) == {"get", "post"}
        assert set(paths[f"{API}/{resource}/{{id}}"]) == {"get", "patch", "delete"}
        assert "201" in paths[f"{API}/{resource}"]["post"]["responses"]
        assert "204" in paths[f"{API}/{resource}/{{id}}"]["delete"]["responses"]
    assert f"{API}/me" in paths and f"{API}/users" in paths
    schemes = spec["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    components = spec["components"]["schemas"]
    # The real field names, with exact money documented as numbers.
    line_item_in = components["LineItemCreate"]["properties"]
    assert {"advertiser_id", "revenue_type", "revenue_value", "start_date"} <= set(line_item_in)
    assert components["LineItemCreate"]["additionalProperties"] is False
    assert components["PaymentRuleOut"]["properties"]["cost_cpm"]["type"] == "number"
    assert "landing_page_url" in components["ClickTrackerCreate"]["properties"]
    assert "landing_page_url" not in components["ImpressionTrackerCreate"]["properties"]
    filters = {p["name"] for p in paths[f"{API}/impression-trackers"]["get"]["parameters"]}
    assert {"q", "state", "offset", "limit", "advertiser_id", "placement_id"} <= filters


def test_the_openapi_document_shows_the_export_and_saved_report_bodies(api: ApiTestbed) -> None:
    spec = api.anonymous.get(f"{API}/openapi.json").json()
    paths, components = spec["paths"], spec["components"]["schemas"]

    def body(path: str, method: str) -> dict[str, Any]:
        ref = paths[f"{API}{path}"][method]["requestBody"]["content"]["application/json"]
        schema: dict[str, Any] = components[ref["schema"]["$ref"].rsplit("/", 1)[1]]
        return schema

    export = body("/trackers/export", "post")
    assert export["additionalProperties"] is False and export["examples"]
    ids = export["properties"]["impression_tracker_ids"]
    assert ids["anyOf"][0]["items"]["type"] == "integer" and ids["description"] and ids["examples"]
    assert export["properties"]["delivery"]["anyOf"][0]["enum"] == ["now", "email"]
    assert set(export["properties"]) == {
        "impression_tracker_ids",
        "click_tracker_ids",
        "format",
        "macros",
        "preset",
        "use_code",
        "secure",
        "view_element",
        "delivery",
        "emails",
    }
    create = body("/saved-reports", "post")
    change = body("/saved-reports/{report_id}", "patch")
    assert create["required"] == ["name", "definition"] and "required" not in change
    assert (
        set(create["properties"])
        == set(change["properties"])
        == {
            "name",
            "definition",
            "schedule",
            "weekday",
            "hour",
            "timezone",
            "recipients",
            "attachment_format",
        }
    )
    assert create["properties"]["hour"]["type"] == "integer"
    assert all(field["description"] for field in create["properties"].values())


def test_reporter_reads_but_cannot_write(api: ApiTestbed) -> None:
    chain = create_chain(api.admin)
    paths = {
        "advertisers": chain["advertiser"]["id"],
        "line-items": chain["line_item"]["id"],
        "publishers": chain["publisher"]["id"],
        "placements": chain["placement"]["id"],
        "payment-rules": chain["payment_rule"]["id"],
        "impression-trackers": chain["impression_tracker"]["id"],
        "click-trackers": chain["click_tracker"]["id"],
    }
    for path, obj_id in paths.items():
        assert api.reporter.get(f"{API}/{path}").status_code == 200
        assert api.reporter.get(f"{API}/{path}/{obj_id}").status_code == 200
        for response in (
            api.reporter.post(f"{API}/{path}", json={"name": "x"}),
            api.reporter.patch(f"{API}/{path}/{obj_id}", json={"name": "x"}),
            api.reporter.delete(f"{API}/{path}/{obj_id}"),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["detail"][0]["field"] == "role"
        # Nothing changed.
        assert api.admin.get(f"{API}/{path}/{obj_id}").json()["name"] != "x"


def test_trafficker_manages_the_catalogue_but_not_users(api: ApiTestbed) -> None:
    chain = create_chain(api.trafficker)
    tracker_id = chain["click_tracker"]["id"]
    assert api.trafficker.delete(f"{API}/click-trackers/{tracker_id}").status_code == 204
    forbidden = [
        api.trafficker.get(f"{API}/users"),
        api.trafficker.post(f"{API}/users", json={"email": "x@example.com", "role": "admin"}),
        api.trafficker.get(f"{API}/users/1"),
        api.trafficker.patch(f"{API}/users/2", json={"role": "admin"}),
        api.trafficker.post(f"{API}/users/2/tokens", json={}),
        api.trafficker.get(f"{API}/users/2/tokens"),
        api.reporter.get(f"{API}/users"),
        api.reporter.post(f"{API}/users/3/tokens"),
    ]
    for response in forbidden:
        assert response.status_code == 403, response.text
        assert response.json()["detail"][0]["field"] == "role"
    # The trafficker did not promote itself.
    me = api.trafficker.get(f"{API}/me").json()
    assert me["role"] == "trafficker"


def test_me_tells_each_caller_who_they_are(api: ApiTestbed) -> None:
    for role, client in (
        (Role.ADMIN, api.admin),
        (Role.TRAFFICKER, api.trafficker),
        (Role.REPORTER, api.reporter),
    ):
        me = client.get(f"{API}/me")
        assert me.status_code == 200
        assert me.json()["role"] == role.value
        assert me.json()["email"] == f"{role.value}@example.com"
        assert "password" not in str(me.json())


def test_admin_creates_users_and_their_tokens(api: ApiTestbed) -> None:
    response = api.admin.post(
        f"{API}/users", json={"email": " New.Trafficker@Example.com ", "role": "trafficker"}
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["email"] == "new.trafficker@example.com"
    assert user["role"] == "trafficker" and user["state"] == "active"
    generated = user["generated_password"]
    assert isinstance(generated, str) and len(generated) >= 16
    assert api.users.verify_password("new.trafficker@example.com", generated) is not None

    with_password = api.admin.post(
        f"{API}/users",
        json={"email": "rep@example.org", "role": "reporter", "password": "long enough passphrase"},
    )
    assert with_password.status_code == 201
    assert with_password.json()["generated_password"] is None

    listed = api.admin.get(f"{API}/users").json()
    assert listed["total"] == 5
    assert {u["email"] for u in listed["items"]} >= {
        "new.trafficker@example.com",
        "rep@example.org",
    }

    issued = api.admin.post(f"{API}/users/{user['id']}/tokens", json={"name": "ci"})
    assert issued.status_code == 201, issued.text
    token = issued.json()
    assert token["user_id"] == user["id"] and token["name"] == "ci"
    new_client = TestClient(api.app, headers=bearer(token["token"]))
    assert new_client.get(f"{API}/me").json()["email"] == "new.trafficker@example.com"
    created(new_client, "advertisers", {"name": "Made by the new trafficker"})

    tokens = api.admin.get(f"{API}/users/{user['id']}/tokens").json()
    assert [t["id"] for t in tokens["items"]] == [token["id"]]
    assert "token" not in tokens["items"][0]  # secrets are shown once, never listed

    # Revoked tokens stop working at once.
    revoke = api.admin.delete(f"{API}/users/{user['id']}/tokens/{token['id']}")
    assert revoke.status_code == 204
    assert_unauthorized(new_client.get(f"{API}/me"))


def test_admin_changes_roles_and_deactivates_users(api: ApiTestbed) -> None:
    reporter_id = api.reporter.get(f"{API}/me").json()["id"]
    promoted = api.admin.patch(f"{API}/users/{reporter_id}", json={"role": "trafficker"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "trafficker"
    created(api.reporter, "advertisers", {"name": "Now allowed"})

    deactivated = api.admin.patch(f"{API}/users/{reporter_id}", json={"state": "inactive"})
    assert deactivated.json()["state"] == "inactive"
    assert_unauthorized(api.reporter.get(f"{API}/advertisers"))

    # The last admin cannot lock everyone out.
    admin_id = api.admin.get(f"{API}/me").json()["id"]
    for change, field in (({"role": "reporter"}, "role"), ({"state": "inactive"}, "state")):
        refused = api.admin.patch(f"{API}/users/{admin_id}", json=change)
        assert refused.status_code == 409
        assert refused.json()["detail"][0]["field"] == field
    assert api.admin.get(f"{API}/me").json()["role"] == "admin"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "not-an-email", "role": "admin"}, 422, "email"),
        ({"email": "a@example.com", "role": "owner"}, 422, "role"),
        ({"email": "a@example.com", "role": "admin", "password": "short"}, 422, "password"),
        ({"email": "a@example.com", "role": "admin", "password": "password"}, 422, "password"),
        ({"email": "a@example.com", "role": "admin", "password": "12345678"}, 422, "password"),
        ({"email": "admin@example.com", "role": "admin"}, 409, "email"),
        ({"email": "ADMIN@example.com", "role": "reporter"}, 409, "email"),
        ({"role": "admin"}, 422, "email"),
        ({"email": "a@example.com", "role": "admin", "is_admin": True}, 422, "is_admin"),
    ],
)
def test_user_refusals_name_the_field(
    api: ApiTestbed, body: dict[str, object], status: int, field: str
) -> None:
    response = api.admin.post(f"{API}/users", json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["field"] == field


def test_unknown_users_and_tokens_are_404(api: ApiTestbed) -> None:
    assert api.admin.get(f"{API}/users/999").status_code == 404
    assert api.admin.post(f"{API}/users/999/tokens").status_code == 404
    admin_id = api.admin.get(f"{API}/me").json()["id"]
    reporter_id = api.reporter.get(f"{API}/me").json()["id"]
    reporter_token = api.admin.post(f"{API}/users/{reporter_id}/tokens").json()["id"]
    # A token id of another user is not found under this user.
    missing = api.admin.delete(f"{API}/users/{admin_id}/tokens/{reporter_token}")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "token_id"


@pytest.mark.parametrize("weak", ["password", "12345678", "letmein1"])
def test_weak_passwords_are_refused_with_a_clear_422(api: ApiTestbed, weak: str) -> None:
    created = api.admin.post(
        f"{API}/users", json={"email": "new@example.com", "role": "reporter", "password": weak}
    )
    assert created.status_code == 422, created.text
    [error] = created.json()["detail"]
    assert error["field"] == "password" and error["message"].startswith("is too easy to guess")
    admin_id = api.admin.get(f"{API}/me").json()["id"]
    changed = api.admin.patch(f"{API}/users/{admin_id}", json={"password": weak})
    assert changed.status_code == 422
    assert changed.json()["detail"][0]["field"] == "password"
    assert api.users.verify_password("admin@example.com", weak) is None
    strong = api.admin.patch(f"{API}/users/{admin_id}", json={"password": "velvet canyon orbit"})
    assert strong.status_code == 200
