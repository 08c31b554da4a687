"""Signing in over HTTP: the throttled password check off the event loop, and its metrics.

Metrics (``API_REGISTRY``, on the main port's ``/metrics``):

- ``adtrack_login_failures_total{reason}``: failed sign-ins; ``reason`` is ``wrong_password``,
  ``unknown_account``, ``inactive`` or ``malformed_email``;
- ``adtrack_login_throttled_total{scope}``: sign-ins refused with 429 because the ``account``
  or the client ``address`` is locked (including the failure that started the lockout);
- ``adtrack_login_lockouts_total{scope}``: lockouts started;
- ``adtrack_password_work_busy_total``: password work refused with 503 (every hashing thread
  busy and the queue full).

The client address is the connection's peer address: the main port does not trust
``X-Forwarded-For`` (a proxy in front makes every client share the proxy's address, so give
the per-address limit room for that, or set it to 0).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from prometheus_client import Counter
from starlette.requests import Request

from adtrack.config import Settings
from adtrack.services.sign_in_throttle import (
    SCOPES,
    SignInOutcome,
    SignInPolicy,
    SignInThrottle,
    ThrottleUnitOfWork,
    sign_in,
)
from adtrack.services.users import UserService
from adtrack.web.metrics import API_REGISTRY
from adtrack.web.password_work import PasswordWork, PasswordWorkBusy

__all__ = [
    "LOGIN_FAILURES",
    "LOGIN_LOCKOUTS",
    "LOGIN_THROTTLED",
    "PasswordWorkBusy",
    "attempt_sign_in",
    "client_address",
    "make_password_work",
    "make_sign_in_throttle",
    "password_work",
    "run_password_work",
]

FAILURE_REASONS = ("wrong_password", "unknown_account", "inactive", "malformed_email")

LOGIN_FAILURES = Counter(
    "adtrack_login_failures",
    "Failed sign-ins, by reason.",
    ["reason"],
    registry=API_REGISTRY,
)
LOGIN_THROTTLED = Counter(
    "adtrack_login_throttled",
    "Sign-ins refused (429) because the account or the client address is locked.",
    ["scope"],
    registry=API_REGISTRY,
)
LOGIN_LOCKOUTS = Counter(
    "adtrack_login_lockouts",
    "Lockouts started by too many failed sign-ins.",
    ["scope"],
    registry=API_REGISTRY,
)
PASSWORD_WORK_BUSY = Counter(
    "adtrack_password_work_busy",
    "Password hashing refused (503): every hashing thread busy and the queue full.",
    registry=API_REGISTRY,
)
for _reason in FAILURE_REASONS:
    LOGIN_FAILURES.labels(reason=_reason)
for _scope in SCOPES:
    LOGIN_THROTTLED.labels(scope=_scope)
    LOGIN_LOCKOUTS.labels(scope=_scope)

T = TypeVar("T")


def make_sign_in_throttle(
    settings: Settings, uow_factory: Callable[[], ThrottleUnitOfWork]
) -> SignInThrottle:
    policy = SignInPolicy(
        max_failures_per_account=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        window=timedelta(seconds=settings.login_window_seconds),
        lockout=timedelta(seconds=settings.login_lockout_seconds),
        max_lockout=timedelta(seconds=settings.login_max_lockout_seconds),
    )
    return SignInThrottle(uow_factory, policy)


def make_password_work(settings: Settings) -> PasswordWork:
    return PasswordWork(settings.password_hash_threads, settings.password_hash_queue)


def password_work(request: Request) -> PasswordWork:
    work: PasswordWork = request.app.state.password_work
    return work


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def run_password_work(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a password thread (for anything that hashes a password)."""
    try:
        return await password_work(request).run(fn, *args)
    except PasswordWorkBusy:
        PASSWORD_WORK_BUSY.inc()
        raise


async def attempt_sign_in(request: Request, email: str, password: str) -> SignInOutcome:
    """Check ``email``/``password`` for the request's client: throttle, argon2, bookkeeping.

    Raises ``PasswordWorkBusy`` when the password threads are saturated.
    """
    users: UserService = request.app.state.users
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    outcome = await run_password_work(
        request, sign_in, users, throttle, email, password, client_address(request)
    )
    if outcome.failure is not None:
        LOGIN_FAILURES.labels(reason=outcome.failure).inc()
    if outcome.throttled is not None:
        LOGIN_THROTTLED.labels(scope=outcome.throttled).inc()
        if outcome.locked_now:
            LOGIN_LOCKOUTS.labels(scope=outcome.throttled).inc()
    return outcome
