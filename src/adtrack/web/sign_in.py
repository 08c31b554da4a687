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
from typing import TypeVar, TypeVarTuple, Unpack

from prometheus_client import Counter
from starlette.requests import Request

from adtrack.domain.sign_in_lockout import SCOPES
from adtrack.services.sign_in_throttle import SignInOutcome, sign_in
from adtrack.web.metrics import API_REGISTRY
from adtrack.web.password_work import PasswordWork, PasswordWorkBusy
from adtrack.web.state import services, web_state

__all__ = [
    "LOGIN_FAILURES",
    "LOGIN_LOCKOUTS",
    "LOGIN_THROTTLED",
    "PasswordWorkBusy",
    "attempt_sign_in",
    "client_address",
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
Args = TypeVarTuple("Args")


def password_work(request: Request) -> PasswordWork:
    return web_state(request).password_work


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def run_password_work(request: Request, fn: Callable[[Unpack[Args]], T], *args: *Args) -> T:
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
    container = services(request)
    outcome = await run_password_work(
        request,
        sign_in,
        container.users,
        container.sign_in_throttle,
        email,
        password,
        client_address(request),
    )
    if outcome.failure is not None:
        LOGIN_FAILURES.labels(reason=outcome.failure).inc()
    if outcome.throttled is not None:
        LOGIN_THROTTLED.labels(scope=outcome.throttled).inc()
        if outcome.locked_now:
            LOGIN_LOCKOUTS.labels(scope=outcome.throttled).inc()
    return outcome
