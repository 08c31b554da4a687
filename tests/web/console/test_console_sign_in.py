"""Console sign-in protection and server-side sessions: throttled sign-in (429 + Retry-After),
logged and counted; sign-out, "sign out everywhere", deactivation and a new password end
sessions on the server, so a replayed cookie is refused; new passwords must be strong."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adtrack.domain.model import Role
from adtrack.web.console.auth import COOKIE_NAME
from adtrack.web.metrics import API_REGISTRY
from adtrack.web.state import state_of
from tests.support.api_fixtures import API, bearer
from tests.support.console import PASSWORD, ConsoleBed, console_bed, csrf, field_errors

THROTTLE_ENV = {
    "ADTRACK_LOGIN_MAX_FAILURES": "5",
    "ADTRACK_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000",
    "ADTRACK_LOGIN_LOCKOUT_SECONDS": "3",
}


def metric(name: str, **labels: str) -> float:
    return API_REGISTRY.get_sample_value(name, labels) or 0.0


def post_login(client: TestClient, email: str, password: str, token: str) -> object:
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        follow_redirects=False,
    )


@pytest.fixture
def bed(tmp_path: Path):
    with console_bed(tmp_path, env=THROTTLE_ENV) as bed:
        yield bed


def test_a_flood_of_wrong_passwords_is_throttled_and_then_the_right_one_waits(
    bed: ConsoleBed, caplog: pytest.LogCaptureFixture
) -> None:
    email = bed.add_user(Role.TRAFFICKER)
    client = bed.client
    token = csrf(client.get("/login").text)
    failures_before = metric("adtrack_login_failures_total", reason="wrong_password")
    throttled_before = metric("adtrack_login_throttled_total", scope="account")
    lockouts_before = metric("adtrack_login_lockouts_total", scope="account")

    statuses = []
    last_retry_after = 0
    with caplog.at_level(logging.WARNING):
        for attempt in range(200):
            answer = post_login(client, email, f"wrong guess {attempt}", token)
            statuses.append(answer.status_code)  # type: ignore[attr-defined]
            if answer.status_code == 429:  # type: ignore[attr-defined]
                last_retry_after = int(answer.headers["retry-after"])  # type: ignore[attr-defined]
                assert 1 <= last_retry_after <= 24 * 3600
                assert "Too many failed sign-ins" in answer.text  # type: ignore[attr-defined]
    assert statuses[:4] == [401] * 4
    assert statuses[4] == 429  # the fifth failure starts the lockout
    # Only the attempts made when a lockout had ended were checked at all (the lockout is 3 s).
    assert statuses.count(429) >= 190

    # The right password is refused while the lockout lasts ...
    right = post_login(client, email, PASSWORD, token)
    assert right.status_code == 429  # type: ignore[attr-defined]
    wait = int(right.headers["retry-after"])  # type: ignore[attr-defined]
    assert 1 <= wait <= 3 * 8  # 3 s, doubled per further lockout during the flood
    assert client.get("/advertisers", follow_redirects=False).status_code == 303
    # ... and accepted once it has ended.
    time.sleep(wait + 0.2)
    signed_in = post_login(client, email, PASSWORD, token)
    assert signed_in.status_code == 303  # type: ignore[attr-defined]
    assert client.get("/advertisers").status_code == 200

    checked = statuses.count(401) + sum(
        1 for i, s in enumerate(statuses) if s == 429 and (i == 0 or statuses[i - 1] != 429)
    )
    assert metric("adtrack_login_failures_total", reason="wrong_password") - failures_before == (
        checked
    )
    assert metric("adtrack_login_throttled_total", scope="account") - throttled_before == (
        statuses.count(429) + 1
    )
    assert metric("adtrack_login_lockouts_total", scope="account") - lockouts_before >= 1
    failed_logs = [r.getMessage() for r in caplog.records if "sign-in failed" in r.getMessage()]
    locked_logs = [r.getMessage() for r in caplog.records if "sign-in locked" in r.getMessage()]
    assert len(failed_logs) == checked and locked_logs
    assert all(email in line and "testclient" in line for line in failed_logs)
    assert not any("wrong guess" in r.getMessage() for r in caplog.records)  # no passwords


def test_an_unknown_email_is_throttled_with_the_same_answers(bed: ConsoleBed) -> None:
    real = bed.add_user(Role.REPORTER)

    def answers(email: str) -> list[tuple[int, str, str]]:
        client = bed.new_client()
        token = csrf(client.get("/login").text)
        seen = []
        for attempt in range(7):
            password = PASSWORD if attempt == 6 else f"not it {attempt}"
            answer = post_login(client, email, password, token)
            error = re.search(r'role="alert">([^<]*)<', answer.text)  # type: ignore[attr-defined]
            seen.append(
                (
                    answer.status_code,  # type: ignore[attr-defined]
                    error.group(1) if error else "",
                    answer.headers.get("retry-after", ""),  # type: ignore[attr-defined]
                )
            )
        return seen

    assert answers(real) == answers("nobody.here@example.com")
    assert answers(real)[-1][0] == 429


def test_a_replayed_cookie_is_refused_after_sign_out(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.TRAFFICKER)
    bed.sign_in(email)
    copied = bed.client.cookies.get(COOKIE_NAME)
    assert copied and bed.client.get("/advertisers").status_code == 200
    thief = bed.new_client()
    thief.cookies.set(COOKIE_NAME, copied, domain="testserver.local")
    assert thief.get("/advertisers", follow_redirects=False).status_code == 200

    out = bed.client.post("/logout", data={"csrf_token": bed.token()}, follow_redirects=False)
    assert out.status_code == 303
    # The copy taken before sign-out is still correctly signed, but its session is gone.
    answer = thief.get("/advertisers", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert thief.post("/advertisers", data={"name": "x"}, follow_redirects=False).status_code in (
        303,
        403,
    )
    assert bed.catalogue.advertisers.list().total == 0


def test_an_admin_signs_a_user_out_everywhere(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.TRAFFICKER)
    admin = bed.sign_in(bed.add_user(Role.ADMIN), bed.new_client())
    laptop, phone = bed.sign_in(email, bed.new_client()), bed.sign_in(email, bed.new_client())
    assert laptop.get("/advertisers").status_code == 200
    assert phone.get("/advertisers").status_code == 200
    user = bed.users.get_user_by_email(email)
    token = bed.users.create_token(user.id, "script").secret

    # The console's users page has the button.
    page = admin.get("/users")
    assert f'action="/users/{user.id}/revoke-sessions"' in page.text
    answer = admin.post(
        f"/users/{user.id}/revoke-sessions",
        data={"csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "out everywhere (2 sessions)" in admin.get("/users").text
    for client in (laptop, phone):
        assert client.get("/advertisers", follow_redirects=False).status_code == 303
    # API tokens are separate credentials: they stay valid.
    assert bed.client.get(f"{API}/me", headers=bearer(token)).status_code == 200

    # The API endpoint does the same; only admins may call it.
    bed.sign_in(email, laptop)
    admin_token = bed.users.create_token(bed.users.get_user_by_email("admin@example.com").id)
    api = bed.new_client()
    revoked = api.post(f"{API}/users/{user.id}/revoke-sessions", headers=bearer(admin_token.secret))
    assert revoked.status_code == 200 and revoked.json() == {"revoked": 1}
    assert laptop.get("/advertisers", follow_redirects=False).status_code == 303
    refused = api.post(f"{API}/users/{user.id}/revoke-sessions", headers=bearer(token))
    assert refused.status_code == 403
    missing = api.post(f"{API}/users/99999/revoke-sessions", headers=bearer(admin_token.secret))
    assert missing.status_code == 404 and missing.json()["detail"][0]["field"] == "id"


def test_deactivation_and_a_new_password_end_sessions(bed: ConsoleBed) -> None:
    email = bed.add_user(Role.TRAFFICKER)
    admin_email = bed.add_user(Role.ADMIN)
    user_client = bed.sign_in(email, bed.new_client())
    copied = user_client.cookies.get(COOKIE_NAME)
    user = bed.users.get_user_by_email(email)
    bed.users.update_user(user.id, {"state": "inactive"})
    bed.users.update_user(user.id, {"state": "active"})
    # Active again, but the session did not come back with it.
    replay = bed.new_client()
    replay.cookies.set(COOKIE_NAME, copied or "", domain="testserver.local")
    assert replay.get("/advertisers", follow_redirects=False).status_code == 303

    bed.sign_in(email, user_client)
    assert user_client.get("/advertisers").status_code == 200
    admin = bed.sign_in(admin_email, bed.new_client())
    changed = admin.post(
        f"/users/{user.id}",
        data={"csrf_token": bed.token(admin, "/users"), "password": "fresh lantern meadow"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert user_client.get("/advertisers", follow_redirects=False).status_code == 303
    assert admin.get("/advertisers").status_code == 200  # another user's password: admin stays

    # An admin setting their own password stays signed in here, on a fresh session; a copy
    # of the old cookie is dead.
    old_admin_cookie = admin.cookies.get(COOKIE_NAME)
    me = bed.users.get_user_by_email(admin_email)
    own = admin.post(
        f"/users/{me.id}",
        data={"csrf_token": bed.token(admin, "/users"), "password": "another quiet harbour"},
        follow_redirects=False,
    )
    assert own.status_code == 303
    assert admin.get("/users").status_code == 200
    stale = bed.new_client()
    stale.cookies.set(COOKIE_NAME, old_admin_cookie or "", domain="testserver.local")
    assert stale.get("/users", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("weak", ["password", "12345678", "qwertyuiop"])
def test_weak_passwords_are_refused_by_the_console_forms(bed: ConsoleBed, weak: str) -> None:
    admin = bed.sign_in(bed.add_user(Role.ADMIN))
    page = admin.get("/users")
    refused = admin.post(
        "/users",
        data={
            "csrf_token": csrf(page.text),
            "email": "new@example.com",
            "role": "reporter",
            "password": weak,
        },
    )
    assert refused.status_code == 422
    assert "too easy to guess" in field_errors(refused.text)["password"]
    assert [u.email for u in bed.users.list_users()] == ["admin@example.com"]

    user = bed.users.get_user_by_email("admin@example.com")
    changed = admin.post(
        f"/users/{user.id}",
        data={"csrf_token": csrf(page.text), "password": weak},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert "too easy to guess" in admin.get("/users").text  # the flash message
    assert bed.users.verify_password("admin@example.com", weak) is None


def test_the_first_run_page_refuses_a_weak_password(tmp_path: Path) -> None:
    with console_bed(tmp_path) as bed:
        token = csrf(bed.client.get("/setup").text)
        refused = bed.client.post(
            "/setup",
            data={
                "csrf_token": token,
                "email": "boss@example.com",
                "password": "12345678",
                "password_confirm": "12345678",
            },
        )
        assert refused.status_code == 422
        assert "too easy to guess" in field_errors(refused.text)["password"]
        assert bed.users.list_users() == []


def test_saturated_password_threads_answer_503_with_retry_after(tmp_path: Path) -> None:
    env = {"ADTRACK_PASSWORD_HASH_THREADS": "1", "ADTRACK_PASSWORD_HASH_QUEUE": "0"}
    with console_bed(tmp_path, env=env) as bed:
        email = bed.add_user(Role.ADMIN)
        admin_token = bed.users.create_token(bed.users.get_user_by_email(email).id).secret
        token = csrf(bed.client.get("/login").text)
        busy_before = metric("adtrack_password_work_busy_total")
        gate = threading.Event()
        occupied = state_of(bed.app).password_work.submit(gate.wait, 30)  # the only thread
        try:
            answer = post_login(bed.client, email, PASSWORD, token)
            assert answer.status_code == 503  # type: ignore[attr-defined]
            assert answer.headers["retry-after"] == "2"  # type: ignore[attr-defined]
            assert "busy" in answer.text  # type: ignore[attr-defined]
            api = bed.client.post(
                f"{API}/users",
                json={"email": "n@example.com", "role": "reporter"},
                headers=bearer(admin_token),
            )
            assert api.status_code == 503 and api.headers["retry-after"] == "2"
            assert api.json()["detail"][0]["field"] == "password"
        finally:
            gate.set()
        assert occupied.result(timeout=10) is True
        assert metric("adtrack_password_work_busy_total") - busy_before == 2
        # Free again: the same sign-in goes through.
        assert post_login(bed.client, email, PASSWORD, token).status_code == 303  # type: ignore[attr-defined]
