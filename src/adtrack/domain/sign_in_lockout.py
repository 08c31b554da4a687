"""The sign-in lockout's arithmetic: a subject's failures in a window, and lockouts that double
each time (see ``services/sign_in_throttle.py`` for how sign-ins use it). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

__all__ = ["SCOPES", "FailureRecord", "Scope", "SignInPolicy"]

Scope = Literal["account", "address"]
SCOPES: tuple[Scope, ...] = ("account", "address")


@dataclass(frozen=True)
class SignInPolicy:
    """How many failures lock a subject, within which window, and for how long.

    A limit of 0 turns that scope's throttling off.
    """

    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    max_lockout: timedelta = timedelta(hours=24)

    def limit(self, scope: Scope) -> int:
        return (
            self.max_failures_per_account if scope == "account" else self.max_failures_per_address
        )


@dataclass(frozen=True)
class FailureRecord:
    """One subject's state: ``failures`` since ``window_start``; locked until ``locked_until``;
    ``lockouts`` so far (each doubles the next)."""

    failures: int
    window_start: datetime
    locked_until: datetime | None = None
    lockouts: int = 0

    def expires_at(self, policy: SignInPolicy) -> datetime:
        """After this the record says nothing any more (and may be deleted)."""
        end = self.window_start + policy.window
        if self.locked_until is not None:
            end = max(end, self.locked_until + policy.window)
        return end

    def locked_for(self, now: datetime) -> float:
        """Seconds the subject stays locked (0 when it is not)."""
        if self.locked_until is None or self.locked_until <= now:
            return 0.0
        return (self.locked_until - now).total_seconds()

    def after_failure(self, now: datetime, limit: int, policy: SignInPolicy) -> FailureRecord:
        """This record with one more failure at ``now`` (a lockout once ``limit`` is reached)."""
        failures, window_start = self.failures, self.window_start
        if now >= window_start + policy.window:
            failures, window_start = 0, now
        failures += 1
        if limit <= 0 or failures < limit:
            return FailureRecord(failures, window_start, self.locked_until, self.lockouts)
        lockout = min(policy.lockout * (2 ** min(self.lockouts, 30)), policy.max_lockout)
        return FailureRecord(0, now, now + lockout, self.lockouts + 1)
