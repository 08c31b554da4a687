"""Sign-in throttling: failed password sign-ins are limited per account and per client address.

Each *subject* (an account, keyed by its normalised email, or a client address) has a record:
the failures in the current window and, after too many, a lockout. While a subject is locked
every sign-in naming it is refused before any password is checked (so a correct password is
refused too, and a flood costs no hashing). Each further lockout of the same subject, until
its record expires, lasts twice as long as the one before (up to ``max_lockout``).

- Unknown emails get the same records and answers as real accounts: the throttle reveals
  nothing about which accounts exist.
- An account lockout applies from every address (it stops guessing spread over many
  addresses); an address lockout applies to every account tried from that address.
- A successful sign-in clears the account's record, not the address's: otherwise a guesser
  with one valid account could reset their address between guesses.

The records live in the database (table ``sign_in_failures``) so every API process of a
deployment shares them and a restart forgets nothing. Records are deleted when they expire.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from adtrack.domain.errors import Conflict, ValidationError
from adtrack.domain.sign_in_lockout import FailureRecord, Scope, SignInPolicy
from adtrack.domain.utc import utc_now
from adtrack.services.ports import ThrottleUnitOfWork, User
from adtrack.services.users import UserService, normalise_email

__all__ = [
    "Refusal",
    "SignInOutcome",
    "SignInThrottle",
    "account_key",
    "sign_in",
]

log = logging.getLogger(__name__)

# Addresses are at most 45 characters (IPv6); keep stored subjects bounded anyway.
MAX_SUBJECT_LENGTH = 320


def fresh_record(now: datetime) -> FailureRecord:
    return FailureRecord(0, now)


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused because ``scope`` is locked for ``retry_after`` more seconds."""

    scope: Scope
    retry_after: int


def _retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class SignInThrottle:
    def __init__(
        self,
        uow_factory: Callable[[], ThrottleUnitOfWork],
        policy: SignInPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._uow_factory = uow_factory
        self.policy = policy or SignInPolicy()
        self._clock = clock

    def _subjects(self, account: str | None, address: str | None) -> Iterator[tuple[Scope, str]]:
        if account and self.policy.max_failures_per_account > 0:
            yield "account", account[:MAX_SUBJECT_LENGTH]
        if address and self.policy.max_failures_per_address > 0:
            yield "address", address[:MAX_SUBJECT_LENGTH]

    def refusal(self, account: str | None, address: str | None) -> Refusal | None:
        """Why a sign-in for ``account`` from ``address`` is refused now, or ``None``."""
        now = self._clock()
        longest: Refusal | None = None
        with self._uow_factory() as uow:
            for scope, subject in self._subjects(account, address):
                record = uow.sign_in_failures.get(scope, subject)
                seconds = record.locked_for(now) if record is not None else 0.0
                if seconds > 0 and (longest is None or seconds > longest.retry_after):
                    longest = Refusal(scope, _retry_after(seconds))
        return longest

    def record_failure(self, account: str | None, address: str | None) -> Refusal | None:
        """Count a failed sign-in; the longest lockout it started, if any."""
        locked: Refusal | None = None
        for scope, subject in self._subjects(account, address):
            record = self._count(scope, subject)
            seconds = record.locked_for(self._clock())
            if record.failures == 0 and seconds > 0:  # this failure started the lockout
                log.warning(
                    "sign-in locked: %s %r for %d s (lockout %d)",
                    scope,
                    subject,
                    _retry_after(seconds),
                    record.lockouts,
                )
                if locked is None or seconds > locked.retry_after:
                    locked = Refusal(scope, _retry_after(seconds))
        return locked

    def _count(self, scope: Scope, subject: str) -> FailureRecord:
        limit = self.policy.limit(scope)
        for attempt in range(3):
            now = self._clock()
            try:
                with self._uow_factory() as uow:
                    store = uow.sign_in_failures
                    record = store.get(scope, subject, for_update=True)
                    if record is None or now >= record.expires_at(self.policy):
                        record = fresh_record(now)
                    record = record.after_failure(now, limit, self.policy)
                    store.put(scope, subject, record, record.expires_at(self.policy))
                    if attempt == 0:
                        store.delete_expired(now)
                    uow.commit()
                    return record
            except Conflict:  # a concurrent first failure inserted the row: count again
                continue
        raise RuntimeError(f"cannot record a sign-in failure for {scope} {subject!r}")

    def record_success(self, account: str) -> None:
        with self._uow_factory() as uow:
            uow.sign_in_failures.delete("account", account[:MAX_SUBJECT_LENGTH])
            uow.commit()

    def unlock(self, account: str) -> None:
        """Forget an account's failures and lockout (an admin's remedy for a locked-out user)."""
        self.record_success(normalise_email(account))


@dataclass(frozen=True)
class SignInOutcome:
    """What a sign-in attempt came to: the user, or the failure's reason, and when refused by
    the throttle (now or by the lockout this failure started) the scope and ``retry_after``."""

    user: User | None = None
    failure: str | None = None
    throttled: Scope | None = None
    retry_after: int = 0
    locked_now: bool = False


def account_key(email: str) -> str | None:
    """The account subject of a typed email (``None`` when it is not an email at all)."""
    try:
        return normalise_email(email)
    except ValidationError:
        return None


def sign_in(
    users: UserService, throttle: SignInThrottle, email: str, password: str, address: str | None
) -> SignInOutcome:
    """Check the throttle, then the password, and count a failure (blocking: argon2 inside)."""
    account = account_key(email)
    refused = throttle.refusal(account, address)
    if refused is not None:
        return SignInOutcome(throttled=refused.scope, retry_after=refused.retry_after)
    check = users.check_credentials(email, password)
    if check.user is not None:
        if account is not None:
            throttle.record_success(account)
        return SignInOutcome(user=check.user)
    log.warning("sign-in failed: %s for %r from %s", check.failure, email[:100], address)
    locked = throttle.record_failure(account, address)
    if locked is not None:
        return SignInOutcome(
            failure=check.failure,
            throttled=locked.scope,
            retry_after=locked.retry_after,
            locked_now=True,
        )
    return SignInOutcome(failure=check.failure)
