"""Console sign-in, sessions, CSRF, the first-run page and roles."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adtrack.domain.model import Role
from adtrack.web.console.auth import COOKIE_NAME, ConsoleSession, SessionCodec
from adtrack.web.state import state_of
from tests.support.console import PASSWORD, ConsoleBed, console_bed, csrf, field_errors


@pytest.fixture
def bed(tmp_path: Path):
    with console_bed(tmp_path) as bed:
        yield bed


def test_first_run_creates_the_admin_once(bed: ConsoleBed) -> None:
    client = bed.client
    answer = client.get("/impression-trackers", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/setup"
    page = client.get("/setup")
    assert page.status_code == 200 and "Create admin" in page.text
    token = csrf(page.text)

    refused = client.post(
        "/setup",
        data={"csrf_token": token, "email": "not-an-email", "password": "short"},
    )
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert "email" in errors["email"] and "8 characters" in errors["password"]
    assert 'value="not-an-email"' in refused.text  # nothing typed is lost

    mismatch = client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": "boss@example.com",
            "password": PASSWORD,
            "password_confirm": "something else",
        },
    )
    assert field_errors(mismatch.text) == {"password_confirm": "does not match the password"}

    done = client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": "boss@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert done.status_code == 200 and "Admin created" in done.text
    # The API token shown once works against the API.
    api_token = done.text.split("readonly>")[1].split("</textarea>")[0].strip()
    me = client.get("/api/v1/users", headers={"Authorization": f"Bearer {api_token}"})
    assert me.status_code == 200
    # Signed in as the new admin, with the password chosen on the page.
    assert client.get("/advertisers").status_code == 200
    assert bed.users.verify_password("boss@example.com", PASSWORD) is not None
    [admin] = bed.users.list_users()
    assert admin.role is Role.ADMIN

    # The page is gone now: nobody else becomes admin through it.
    other = TestClient(bed.app, base_url="https://testserver")
    assert other.get("/setup", follow_redirects=False).headers["location"] == "/login"
    token = csrf(other.get("/login").text)
    again = other.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": "intruder@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
        follow_redirects=False,
    )
    assert again.headers["location"] == "/login"
    assert [u.email for u in bed.users.list_users()] == ["boss@example.com"]


def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_it(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.TRAFFICKER)
    client = bed.client
    assert client.get("/advertisers", follow_redirects=False).headers["location"] == (
        "/login?next=%2Fadvertisers"
    )
    token = csrf(client.get("/login?next=/advertisers").text)
    wrong = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": "nope nope"}
    )
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert f'value="{email}"' in wrong.text

    answer = client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/advertisers"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/advertisers"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert (
        "HttpOnly" in cookie
        and "Secure" in cookie
        and "SameSite=lax" in cookie.replace("SameSite=Lax", "SameSite=lax")
    )
    page = client.get("/advertisers")
    assert page.status_code == 200 and email in page.text
    # A new session nonce at sign-in: the pre-sign-in CSRF token is dead.
    assert csrf(page.text) != token

    out = client.post("/logout", data={"csrf_token": csrf(page.text)}, follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert client.get("/advertisers", follow_redirects=False).status_code == 303


def test_sign_in_refuses_foreign_next_urls(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.ADMIN)
    token = csrf(bed.client.get("/login").text)
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = bed.client.post(
            "/login",
            data={"csrf_token": token, "email": email, "password": PASSWORD, "next": evil},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/impression-trackers"
        token = csrf(bed.client.get("/login").text)


def test_cookie_secure_can_be_turned_off_for_plain_http(tmp_path: Path) -> None:
    with console_bed(tmp_path, env={"ADTRACK_COOKIE_SECURE": "0"}) as bed:
        email = bed.add_user(Role.ADMIN)
        client = TestClient(bed.app)  # http://testserver
        token = csrf(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"csrf_token": token, "email": email, "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Secure" not in cookie
        assert client.get("/advertisers").status_code == 200


def test_every_state_changing_request_needs_the_csrf_token(bed: ConsoleBed) -> None:
    bed.sign_in(bed.add_user(Role.ADMIN))
    missing = bed.client.post("/advertisers", data={"name": "Sneaky"})
    assert missing.status_code == 403 and "Security check failed" in missing.text
    forged = bed.client.post("/advertisers", data={"name": "Sneaky", "csrf_token": "0" * 64})
    assert forged.status_code == 403
    # Another session's token does not fit this session.
    other = bed.sign_in(bed.add_user(Role.TRAFFICKER), bed.new_client())
    other_token = csrf(other.get("/advertisers").text)
    stolen = bed.client.post("/advertisers", data={"name": "Sneaky", "csrf_token": other_token})
    assert stolen.status_code == 403
    assert bed.catalogue.advertisers.list().total == 0
    # htmx sends it as a header.
    token = bed.token()
    answer = bed.client.post(
        "/advertisers",
        data={"name": "Fine", "state": "active"},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert [a.name for a in bed.catalogue.advertisers.list().items] == ["Fine"]


def test_a_deactivated_user_is_signed_out_at_once(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.TRAFFICKER)
    bed.add_user(Role.ADMIN)
    bed.sign_in(email)
    assert bed.client.get("/advertisers").status_code == 200
    user = bed.users.get_user_by_email(email)
    bed.users.update_user(user.id, {"state": "inactive"})
    assert bed.client.get("/advertisers", follow_redirects=False).status_code == 303


def test_tampered_or_foreign_session_cookies_are_ignored(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.ADMIN)
    user_id = bed.users.get_user_by_email(email).id
    forged = SessionCodec("some other secret").encode(ConsoleSession.for_user(user_id))
    codec: SessionCodec = state_of(bed.app).console.codec
    session = ConsoleSession.for_user(user_id)
    genuine = codec.encode(session)
    client = bed.new_client()
    client.cookies.set(COOKIE_NAME, forged, domain="testserver.local")
    assert client.get("/advertisers", follow_redirects=False).status_code == 303
    # Signed right but never opened on the server (no sign-in made it): refused too.
    client.cookies.set(COOKIE_NAME, genuine, domain="testserver.local")
    assert client.get("/advertisers", follow_redirects=False).status_code == 303
    # Signed right and recorded as a sign-in does: accepted.
    bed.users.open_session(user_id, session.nonce, timedelta(hours=1))
    assert client.get("/advertisers", follow_redirects=False).status_code == 200
    assert codec.decode(genuine) is not None
    assert codec.decode(genuine[:-2] + "xx") is None
    assert codec.decode("garbage") is None


def test_the_session_secret_is_kept_in_the_data_dir(bed: ConsoleBed, tmp_path: Path) -> None:
    secret_file = tmp_path / "data" / "session_secret"
    assert secret_file.exists() and (secret_file.stat().st_mode & 0o777) == 0o600
    assert state_of(bed.app).console.codec.secret == secret_file.read_text().strip()


def test_roles_decide_what_is_shown_and_allowed(bed: ConsoleBed) -> None:
    reporter = bed.sign_in(bed.add_user(Role.REPORTER))
    bed.catalogue.advertisers.create({"name": "Acme Shoes"})
    page = reporter.get("/advertisers")
    assert page.status_code == 200 and "Acme Shoes" in page.text
    assert "+ New" not in page.text and 'href="/users"' not in page.text
    assert reporter.get("/advertisers/new").status_code == 403
    token = csrf(page.text)
    refused = reporter.post("/advertisers", data={"csrf_token": token, "name": "Nope"})
    assert refused.status_code == 403 and "look but not change" in refused.text
    assert reporter.get("/users").status_code == 403
    assert reporter.get("/reports").status_code == 200

    admin = bed.sign_in(bed.add_user(Role.ADMIN), bed.new_client())
    assert 'href="/users"' in admin.get("/advertisers").text
    users_page = admin.get("/users")
    assert "reporter@example.com" in users_page.text
    created = admin.post(
        "/users",
        data={"csrf_token": csrf(users_page.text), "email": "new@example.com", "role": "reporter"},
    )
    assert created.status_code == 200 and "shown only now" in created.text
    assert bed.users.get_user_by_email("new@example.com").role is Role.REPORTER
