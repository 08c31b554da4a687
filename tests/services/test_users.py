"""Users, passwords and API tokens (``UserService`` on the SQL store), on SQLite and PostgreSQL.

The shared ``engine`` fixture gives a migrated database on each backend.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables
from adtrack.adapters.sql.users import SqlUserUnitOfWork
from adtrack.domain.errors import Conflict, NotFound, ValidationError
from adtrack.domain.model import Role, State
from adtrack.runtime.serve import ensure_first_admin
from adtrack.services.users import UserService
from tests.support.api_fixtures import FAST_HASHER, fast_user_service


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def users(engine: Engine) -> UserService:
    return fast_user_service(engine)


def test_passwords_are_stored_as_argon2id_hashes(users: UserService, engine: Engine) -> None:
    created = users.create_user("Someone@Example.com", "trafficker", "a long passphrase")
    assert created.generated_password is None
    assert created.user.email == "someone@example.com"
    assert created.user.role is Role.TRAFFICKER and created.user.state is State.ACTIVE
    with engine.connect() as conn:
        stored = conn.execute(select(tables.users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "a long passphrase" not in stored
    assert users.verify_password("someone@example.com", "a long passphrase") == created.user
    assert users.verify_password("SOMEONE@example.com ", "a long passphrase") == created.user
    assert users.verify_password("someone@example.com", "a long passphrasE") is None
    assert users.verify_password("nobody@example.com", "a long passphrase") is None
    assert users.verify_password("not an email", "a long passphrase") is None


def test_the_default_hasher_is_a_real_kdf(engine: Engine) -> None:
    service = UserService(partial(SqlUserUnitOfWork, engine))
    created = service.create_user("kdf@example.com", Role.REPORTER, "passphrase!")
    with engine.connect() as conn:
        stored = conn.execute(select(tables.users.c.password_hash)).scalar_one()
    params = PasswordHasher().hash("x").split("$")[3]
    assert stored.split("$")[3] == params  # argon2-cffi's recommended cost, not a test shortcut
    assert service.verify_password("kdf@example.com", "passphrase!") == created.user


def test_a_password_is_generated_when_none_is_given(users: UserService) -> None:
    created = users.create_user("gen@example.com", Role.ADMIN)
    password = created.generated_password
    assert password is not None and len(password) >= 16
    assert users.verify_password("gen@example.com", password) == created.user
    other = users.create_user("gen2@example.com", Role.ADMIN)
    assert other.generated_password != password


def test_rehashes_weak_hashes_on_login(engine: Engine) -> None:
    weak = fast_user_service(engine)
    weak.create_user("old@example.com", Role.REPORTER, "old passphrase here")
    strong = UserService(partial(SqlUserUnitOfWork, engine))  # the default parameters
    assert strong.verify_password("old@example.com", "old passphrase here") is not None
    with engine.connect() as conn:
        stored = conn.execute(select(tables.users.c.password_hash)).scalar_one()
    assert stored.split("$")[3] == PasswordHasher().hash("x").split("$")[3]
    assert strong.verify_password("old@example.com", "old passphrase here") is not None


@pytest.mark.parametrize(
    ("email", "role", "password", "field"),
    [
        ("", Role.ADMIN, "long enough passphrase", "email"),
        ("no-at-sign", Role.ADMIN, "long enough passphrase", "email"),
        ("two@@example.com", Role.ADMIN, "long enough passphrase", "email"),
        ("spa ce@example.com", Role.ADMIN, "long enough passphrase", "email"),
        ("a@example.com", "root", "long enough passphrase", "role"),
        ("a@example.com", "", "long enough passphrase", "role"),
        ("a@example.com", Role.ADMIN, "short", "password"),
        ("a@example.com", Role.ADMIN, "x" * 2000, "password"),
        ("a@example.com", Role.ADMIN, "nul\x00in password", "password"),
    ],
)
def test_invalid_users_are_refused_naming_the_field(
    users: UserService, email: str, role: str, password: str, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        users.create_user(email, role, password)
    assert refused.value.field == field
    assert users.list_users() == []


def test_emails_are_unique_whatever_the_case(users: UserService) -> None:
    users.create_user("dup@example.com", Role.REPORTER, "long enough passphrase")
    with pytest.raises(Conflict) as refused:
        users.create_user(" DUP@example.com", Role.ADMIN, "long enough passphrase")
    assert refused.value.field == "email"
    assert [u.email for u in users.list_users()] == ["dup@example.com"]


def test_tokens_are_stored_only_as_sha256(users: UserService, engine: Engine) -> None:
    user = users.create_user("tok@example.com", Role.TRAFFICKER, "long enough passphrase").user
    issued = users.create_token(user.id, "ci")
    assert len(issued.secret) == 43  # token_urlsafe(32)
    with engine.connect() as conn:
        row = conn.execute(select(tables.api_tokens)).one()
    assert row.token_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in str(tuple(row))
    assert users.authenticate(issued.secret) == user
    assert users.authenticate(issued.secret[:-1]) is None
    assert users.authenticate("") is None
    assert users.authenticate(None) is None
    assert users.authenticate(row.token_hash) is None  # the stored digest is not a token


def test_each_token_is_new_and_can_be_revoked(users: UserService) -> None:
    user = users.create_user("rev@example.com", Role.REPORTER, "long enough passphrase").user
    first = users.create_token(user.id)
    second = users.create_token_for_email("REV@example.com", "second")
    assert first.secret != second.secret
    users.revoke_token(user.id, first.token.id)
    assert users.authenticate(first.secret) is None
    assert users.authenticate(second.secret) == user
    listed = users.list_tokens(user.id)
    assert [(t.id, t.name, t.revoked_at is not None) for t in listed] == [
        (first.token.id, None, True),
        (second.token.id, "second", False),
    ]
    with pytest.raises(NotFound):
        users.revoke_token(user.id, 99999)
    with pytest.raises(NotFound) as missing:
        users.create_token_for_email("nobody@example.com")
    assert missing.value.field == "email"


def test_inactive_users_cannot_authenticate(users: UserService) -> None:
    users.create_user("boss@example.com", Role.ADMIN, "long enough passphrase")
    user = users.create_user("gone@example.com", Role.TRAFFICKER, "long enough passphrase").user
    token = users.create_token(user.id).secret
    users.update_user(user.id, {"state": "inactive"})
    assert users.authenticate(token) is None
    assert users.verify_password("gone@example.com", "long enough passphrase") is None
    users.update_user(user.id, {"state": "active"})
    assert users.authenticate(token) is not None


def test_token_use_is_recorded_at_most_once_a_minute(engine: Engine) -> None:
    clock = Clock()
    users = UserService(partial(SqlUserUnitOfWork, engine), clock=clock, hasher=FAST_HASHER)
    user = users.create_user("t@example.com", Role.REPORTER, "long enough passphrase").user
    issued = users.create_token(user.id)
    assert users.list_tokens(user.id)[0].last_used_at is None
    users.authenticate(issued.secret)
    assert users.list_tokens(user.id)[0].last_used_at == clock.now
    first_use = clock.now
    clock.now += timedelta(seconds=30)
    users.authenticate(issued.secret)
    assert users.list_tokens(user.id)[0].last_used_at == first_use
    clock.now += timedelta(seconds=31)
    users.authenticate(issued.secret)
    assert users.list_tokens(user.id)[0].last_used_at == clock.now


def test_the_last_admin_cannot_be_demoted(users: UserService) -> None:
    admin = users.create_user("a1@example.com", Role.ADMIN, "long enough passphrase").user
    with pytest.raises(Conflict) as refused:
        users.update_user(admin.id, {"role": "reporter"})
    assert refused.value.field == "role"
    with pytest.raises(Conflict) as refused:
        users.update_user(admin.id, {"state": "inactive"})
    assert refused.value.field == "state"
    second = users.create_user("a2@example.com", Role.ADMIN, "long enough passphrase").user
    assert users.update_user(admin.id, {"role": "reporter"}).role is Role.REPORTER
    with pytest.raises(Conflict):
        users.update_user(second.id, {"state": "inactive"})
    with pytest.raises(ValidationError) as unknown:
        users.update_user(second.id, {"email": "x@example.com"})
    assert unknown.value.field == "email"


def test_password_change(users: UserService) -> None:
    user = users.create_user("pw@example.com", Role.REPORTER, "first password").user
    users.update_user(user.id, {"password": "second password"})
    assert users.verify_password("pw@example.com", "first password") is None
    assert users.verify_password("pw@example.com", "second password") is not None
    with pytest.raises(ValidationError):
        users.update_user(user.id, {"password": "short"})
    with pytest.raises(NotFound):
        users.update_user(99999, {"role": "admin"})


def test_bootstrap_creates_the_first_admin_once(users: UserService) -> None:
    first = users.bootstrap_admin("Admin@Example.com")
    assert first is not None
    assert first.user.role is Role.ADMIN and first.user.email == "admin@example.com"
    assert users.verify_password("admin@example.com", first.password) == first.user
    assert users.authenticate(first.token) == first.user
    assert users.bootstrap_admin("admin@example.com") is None
    assert users.bootstrap_admin("other@example.com") is None
    assert len(users.list_users()) == 1


def test_no_bootstrap_when_someone_was_created_by_hand(users: UserService) -> None:
    users.create_user("ops@example.com", Role.REPORTER, "long enough passphrase")
    assert users.bootstrap_admin("admin@example.com") is None


def test_first_run_lines_are_printed_once(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADTRACK_ADMIN_EMAIL", "owner@example.com")
    first = ensure_first_admin(engine)
    assert first is not None
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "adtrack: first run - created admin user owner@example.com",
        f"adtrack: admin password: {first.password}",
        f"adtrack: admin token: {first.token}",
    ]
    assert ensure_first_admin(engine) is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("weak", ["password", "12345678", "qwerty123", "iloveyou"])
def test_weak_passwords_are_refused_everywhere_a_password_is_set(
    users: UserService, weak: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        users.create_user("weak@example.com", Role.REPORTER, weak)
    assert refused.value.field == "password"
    assert refused.value.message.startswith("is too easy to guess")
    assert users.list_users() == []
    user = users.create_user("weak@example.com", Role.REPORTER, "a long passphrase").user
    with pytest.raises(ValidationError) as changed:
        users.update_user(user.id, {"password": weak})
    assert changed.value.field == "password"
    assert users.verify_password("weak@example.com", "a long passphrase") == user


def test_a_password_made_of_the_users_email_is_weak(users: UserService) -> None:
    with pytest.raises(ValidationError, match="too easy to guess"):
        users.create_user("new@example.com", Role.REPORTER, "new@example.com!")
    # The same string is fine for someone whose email it is not.
    assert users.create_user("other@example.com", Role.REPORTER, "new@example.com!").user


def test_generated_passwords_pass_the_strength_check(users: UserService, engine: Engine) -> None:
    from adtrack.services.password_policy import check_new_password
    from adtrack.services.users import generate_password

    for _ in range(50):
        check_new_password(generate_password(), ["admin@example.com"])
    first = ensure_first_admin(engine, "first@example.com")
    assert first is not None
    check_new_password(first.password, [first.user.email])


def test_sessions_are_stored_hashed_and_end_server_side(users: UserService, engine: Engine) -> None:
    user = users.create_user("s@example.com", Role.REPORTER, "a long passphrase").user
    other = users.create_user("o@example.com", Role.REPORTER, "a long passphrase").user
    users.open_session(user.id, "secret-one", timedelta(hours=1))
    users.open_session(user.id, "secret-two", timedelta(hours=1))
    users.open_session(other.id, "secret-three", timedelta(hours=1))
    with engine.connect() as conn:
        stored = set(conn.execute(select(tables.console_sessions.c.session_hash)).scalars())
    assert len(stored) == 3 and not any("secret" in value for value in stored)
    assert users.session_user(user.id, "secret-one") == user
    assert users.session_user(other.id, "secret-one") is None  # not this user's session
    assert users.session_user(user.id, "unknown") is None
    users.close_session("secret-one")
    assert users.session_user(user.id, "secret-one") is None
    assert users.session_user(user.id, "secret-two") == user
    assert users.revoke_sessions(user.id) == 1
    assert users.session_user(user.id, "secret-two") is None
    assert users.session_user(other.id, "secret-three") == other  # others keep theirs
    with pytest.raises(NotFound):
        users.revoke_sessions(99999)


def test_sessions_expire(engine: Engine) -> None:
    clock = Clock()
    users = UserService(partial(SqlUserUnitOfWork, engine), hasher=FAST_HASHER, clock=clock)
    user = users.create_user("e@example.com", Role.REPORTER, "a long passphrase").user
    users.open_session(user.id, "short-lived", timedelta(hours=12))
    clock.now += timedelta(hours=11, minutes=59)
    assert users.session_user(user.id, "short-lived") == user
    clock.now += timedelta(minutes=1)
    assert users.session_user(user.id, "short-lived") is None
    users.open_session(user.id, "next", timedelta(hours=12))  # tidies up expired rows
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tables.console_sessions))
        assert count.scalar_one() == 1


def test_api_sessions_lapse_after_idle_time_from_the_last_call(engine: Engine) -> None:
    clock = Clock()
    users = UserService(partial(SqlUserUnitOfWork, engine), hasher=FAST_HASHER, clock=clock)
    user = users.create_user("api@example.com", Role.TRAFFICKER, "a long passphrase").user
    idle = timedelta(hours=2)
    token = users.open_api_session(user.id, idle)
    with engine.connect() as conn:
        stored = conn.execute(select(tables.console_sessions.c.session_hash)).scalar_one()
    assert token not in stored

    # Each call moves the end to two hours after it.
    for _ in range(3):
        clock.now += timedelta(hours=1, minutes=59)
        assert users.api_session_user(token, idle) == user
    clock.now += timedelta(hours=2)
    assert users.api_session_user(token, idle) is None
    assert users.api_session_user(None, idle) is None
    assert users.api_session_user("x" * 300, idle) is None


def test_api_session_expiry_is_written_at_most_once_a_minute(engine: Engine) -> None:
    clock = Clock()
    users = UserService(partial(SqlUserUnitOfWork, engine), hasher=FAST_HASHER, clock=clock)
    user = users.create_user("calm@example.com", Role.REPORTER, "a long passphrase").user
    token = users.open_api_session(user.id, timedelta(hours=2))

    def stored_expiry() -> datetime:
        with engine.connect() as conn:
            value = conn.execute(select(tables.console_sessions.c.expires_at)).scalar_one()
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    opened = stored_expiry()
    clock.now += timedelta(seconds=30)
    assert users.api_session_user(token, timedelta(hours=2)) == user
    assert stored_expiry() == opened
    clock.now += timedelta(seconds=31)
    assert users.api_session_user(token, timedelta(hours=2)) == user
    assert stored_expiry() == clock.now + timedelta(hours=2)


def test_api_sessions_and_console_sessions_do_not_stand_in_for_each_other(
    users: UserService,
) -> None:
    user = users.create_user("both@example.com", Role.REPORTER, "a long passphrase").user
    token = users.open_api_session(user.id, timedelta(hours=2))
    users.open_session(user.id, "console-secret", timedelta(hours=2))

    assert users.session_user(user.id, token) is None
    assert users.api_session_user("console-secret", timedelta(hours=2)) is None
    assert users.authenticate(token) is None  # not an API token either


def test_api_sessions_end_with_revocation_deactivation_and_a_new_password(
    users: UserService,
) -> None:
    idle = timedelta(hours=2)
    user = users.create_user("ends@example.com", Role.TRAFFICKER, "a long passphrase").user
    users.create_user("admin2@example.com", Role.ADMIN, "a long passphrase")

    revoked = users.open_api_session(user.id, idle)
    users.revoke_sessions(user.id)
    assert users.api_session_user(revoked, idle) is None

    reset = users.open_api_session(user.id, idle)
    users.update_user(user.id, {"password": "another long passphrase"})
    assert users.api_session_user(reset, idle) is None

    deactivated = users.open_api_session(user.id, idle)
    users.update_user(user.id, {"state": "inactive"})
    assert users.api_session_user(deactivated, idle) is None
