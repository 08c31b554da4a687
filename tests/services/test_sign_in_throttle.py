"""The sign-in throttle (``services/sign_in_throttle.py``) on the SQL store, SQLite and PostgreSQL:
failures per account and per client address, lockouts that double, and the same answers for
accounts that do not exist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables
from adtrack.adapters.sql.users import SqlUserUnitOfWork
from adtrack.domain.model import Role
from adtrack.domain.sign_in_lockout import FailureRecord, SignInPolicy
from adtrack.services.sign_in_throttle import SignInThrottle, sign_in
from adtrack.services.users import UserService
from tests.support.api_fixtures import FAST_HASHER

PASSWORD = "correct horse battery"
POLICY = SignInPolicy(
    max_failures_per_account=5,
    max_failures_per_address=20,
    window=timedelta(minutes=15),
    lockout=timedelta(minutes=15),
    max_lockout=timedelta(hours=2),
)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(engine: Engine, clock: Clock) -> UserService:
    service = UserService(partial(SqlUserUnitOfWork, engine), hasher=FAST_HASHER, clock=clock)
    service.create_user("real@example.com", Role.TRAFFICKER, PASSWORD)
    service.create_user("other@example.com", Role.REPORTER, PASSWORD)
    return service


@pytest.fixture
def throttle(engine: Engine, clock: Clock) -> SignInThrottle:
    return SignInThrottle(partial(SqlUserUnitOfWork, engine), POLICY, clock=clock)


# --- the record's arithmetic ------------------------------------------------------------------


def test_failures_lock_at_the_limit_and_lockouts_double_up_to_the_maximum() -> None:
    record = FailureRecord(0, T0)
    for _ in range(4):
        record = record.after_failure(T0, 5, POLICY)
    assert record.failures == 4 and record.locked_for(T0) == 0
    record = record.after_failure(T0, 5, POLICY)
    assert record.failures == 0 and record.lockouts == 1
    assert record.locked_for(T0) == 15 * 60
    durations = []
    now = T0
    for _ in range(4):
        now = record.locked_until or now
        for _ in range(5):
            record = record.after_failure(now, 5, POLICY)
        durations.append(record.locked_for(now) / 60)
    assert durations == [30, 60, 120, 120]  # doubling, capped at max_lockout (2 h)


def test_failures_outside_the_window_start_a_new_count() -> None:
    record = FailureRecord(0, T0)
    for _ in range(4):
        record = record.after_failure(T0, 5, POLICY)
    later = T0 + POLICY.window
    record = record.after_failure(later, 5, POLICY)
    assert record.failures == 1 and record.window_start == later and record.locked_until is None


def test_a_limit_of_zero_never_locks() -> None:
    record = FailureRecord(0, T0)
    for _ in range(100):
        record = record.after_failure(T0, 0, POLICY)
    assert record.locked_until is None


# --- sign-in through the throttle on the database -----------------------------------------------


def test_an_account_is_locked_after_five_failures_and_the_right_password_waits(
    users: UserService, throttle: SignInThrottle, clock: Clock
) -> None:
    for attempt in range(1, 5):
        outcome = sign_in(users, throttle, "real@example.com", f"wrong {attempt}", "10.0.0.1")
        assert outcome.user is None and outcome.failure == "wrong_password"
        assert outcome.throttled is None
    fifth = sign_in(users, throttle, "Real@Example.com ", "wrong 5", "10.0.0.1")
    assert fifth.throttled == "account" and fifth.locked_now and fifth.retry_after == 900
    # Locked: the right password is refused too, from this address and from any other.
    for address in ("10.0.0.1", "10.0.0.2"):
        refused = sign_in(users, throttle, "real@example.com", PASSWORD, address)
        assert refused.user is None and refused.throttled == "account"
        assert refused.failure is None and refused.retry_after == 900
    clock.advance(minutes=10)
    assert sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.3").retry_after == 300
    # Other accounts are not affected.
    assert sign_in(users, throttle, "other@example.com", PASSWORD, "10.0.0.1").user is not None
    clock.advance(minutes=5)
    assert sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.1").user is not None


def test_the_next_lockout_of_an_account_is_twice_as_long(
    users: UserService, throttle: SignInThrottle, clock: Clock
) -> None:
    for attempt in range(5):
        sign_in(users, throttle, "real@example.com", f"wrong {attempt}", "10.0.0.1")
    clock.advance(minutes=15)
    for _ in range(4):
        assert sign_in(users, throttle, "real@example.com", "bad", "10.0.0.1").throttled is None
    again = sign_in(users, throttle, "real@example.com", "bad again", "10.0.0.1")
    assert again.throttled == "account" and again.retry_after == 30 * 60
    # A success clears the account's record: the next lockout starts from 15 minutes again.
    clock.advance(minutes=30)
    assert sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.1").user is not None
    for attempt in range(5):
        last = sign_in(users, throttle, "real@example.com", f"wrong {attempt}", "10.0.0.1")
    assert last.retry_after == 15 * 60


def test_unknown_accounts_get_exactly_the_same_answers(
    users: UserService, throttle: SignInThrottle
) -> None:
    def answers(email: str, address: str) -> list[tuple[object, ...]]:
        seen = []
        for attempt in range(7):
            password = PASSWORD if attempt == 6 else f"wrong {attempt}"
            outcome = sign_in(users, throttle, email, password, address)
            seen.append((outcome.user is None, outcome.throttled, outcome.retry_after))
        return seen

    real = answers("real@example.com", "10.0.0.1")
    unknown = answers("nobody@example.com", "10.0.0.2")
    assert real == unknown
    assert real[-1] == (True, "account", 900)  # the right password, refused while locked


def test_an_address_is_locked_after_twenty_failures_on_any_accounts(
    users: UserService, throttle: SignInThrottle, clock: Clock
) -> None:
    for attempt in range(19):
        outcome = sign_in(users, throttle, f"guess{attempt}@example.com", "wrong", "10.0.0.9")
        assert outcome.throttled is None
    last = sign_in(users, throttle, "guess19@example.com", "wrong", "10.0.0.9")
    assert last.throttled == "address" and last.retry_after == 900
    # That address cannot sign in to any account now, even with the right password ...
    refused = sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.9")
    assert refused.throttled == "address" and refused.user is None
    # ... while another address signs in to the same account at once.
    assert sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.10").user is not None
    clock.advance(minutes=15)
    assert sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.9").user is not None


def test_a_success_does_not_reset_the_address_count(
    users: UserService, throttle: SignInThrottle
) -> None:
    for attempt in range(19):
        # A guesser with one valid account signs in between guesses: the address still locks.
        sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.5")
        outcome = sign_in(users, throttle, f"victim{attempt}@example.com", "x", "10.0.0.5")
        assert outcome.throttled is None
    last = sign_in(users, throttle, "victim19@example.com", "x", "10.0.0.5")
    assert last.throttled == "address"


def test_inactive_accounts_and_malformed_emails_count_as_failures(
    users: UserService, throttle: SignInThrottle
) -> None:
    user = users.get_user_by_email("other@example.com")
    users.update_user(user.id, {"state": "inactive"})
    outcome = sign_in(users, throttle, "other@example.com", PASSWORD, "10.0.0.1")
    assert outcome.user is None and outcome.failure == "inactive"
    malformed = sign_in(users, throttle, "not an email", PASSWORD, "10.0.0.1")
    assert malformed.failure == "malformed_email"


def test_expired_records_are_deleted_and_unlock_forgets_a_lockout(
    users: UserService, throttle: SignInThrottle, clock: Clock, engine: Engine
) -> None:
    def rows() -> int:
        with engine.connect() as conn:
            query = select(func.count()).select_from(tables.sign_in_failures)
            return int(conn.execute(query).scalar_one())

    for attempt in range(5):
        sign_in(users, throttle, "real@example.com", f"wrong {attempt}", "10.0.0.1")
    assert rows() == 2  # the account and the address
    throttle.unlock(" REAL@example.com")
    assert sign_in(users, throttle, "real@example.com", PASSWORD, "10.0.0.1").user is not None
    clock.advance(hours=1)  # the address's record has expired
    sign_in(users, throttle, "someone@example.com", "wrong", "10.0.0.2")
    with engine.connect() as conn:
        subjects = set(conn.execute(select(tables.sign_in_failures.c.subject)).scalars())
    assert subjects == {"someone@example.com", "10.0.0.2"}
