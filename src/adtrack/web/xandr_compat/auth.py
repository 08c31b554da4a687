"""The platform's authentication service, ``POST /xandr/auth``, and who is calling.

``{"auth": {"username": EMAIL, "password": P}}`` signs an adtrack user in (the same throttle
and password check as the console) and answers ``{"response": {"status": "OK", "token": T}}``.
The token comes back as the platform took it: a bare ``Authorization: T`` header, or the
cookie the sign-in sets (for ``curl -b cookies -c cookies``); it lapses after
``ADTRACK_XANDR_TOKEN_IDLE_SECONDS`` (2 hours) without a call. adtrack's own API tokens are
taken too (bare or ``Bearer``), so a user needs no second credential.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from adtrack.domain.model import Role
from adtrack.services.ports import User
from adtrack.web.password_work import PasswordWorkBusy
from adtrack.web.sign_in import attempt_sign_in
from adtrack.web.state import services
from adtrack.web.xandr_compat.envelopes import XandrError, ok
from adtrack.web.xandr_compat.request_input import json_object

__all__ = ["TOKEN_COOKIE", "caller", "sign_in", "writer"]

TOKEN_COOKIE = "xandr_token"
_BEARER = "bearer "


def _idle(request: Request) -> timedelta:
    return timedelta(seconds=services(request).settings.xandr_token_idle_seconds)


async def sign_in(request: Request) -> Response:
    body = json_object(await request.body(), "auth")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise XandrError("SYNTAX", "auth needs a username and a password")
    try:
        outcome = await attempt_sign_in(request, username, password)
    except PasswordWorkBusy as busy:
        raise XandrError(
            "SYSTEM",
            "the server is busy checking passwords; try again shortly",
            status=503,
            headers={"Retry-After": str(busy.retry_after)},
        ) from None
    if outcome.throttled is not None:
        raise XandrError(
            "SYSTEM",
            f"too many failed sign-ins; try again in {outcome.retry_after} seconds",
            status=429,
            headers={"Retry-After": str(outcome.retry_after)},
        )
    if outcome.user is None:
        if outcome.failure == "inactive":
            raise XandrError("NOAUTH_DISABLED", "this user has been deactivated")
        raise XandrError("NOAUTH", "No match found for user/pass")
    idle = _idle(request)
    token = await run_in_threadpool(services(request).users.open_api_session, outcome.user.id, idle)
    response = ok(request, {"token": token})
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=int(idle.total_seconds()),
        path="/xandr",
        httponly=True,
        secure=services(request).settings.cookie_secure,
        # A cookie that authenticates writes: never sent by another site's form or script.
        samesite="strict",
    )
    return response


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "").strip()
    if header.lower().startswith(_BEARER):
        header = header[len(_BEARER) :].strip()
    return header or request.cookies.get(TOKEN_COOKIE) or None


def _user_of(request: Request, token: str) -> User | None:
    users = services(request).users
    return users.api_session_user(token, _idle(request)) or users.authenticate(token)


async def caller(request: Request) -> User:
    """The signed-in user of the request, or NOAUTH."""
    token = _token(request)
    user = None if token is None else await run_in_threadpool(_user_of, request, token)
    if user is None:
        raise XandrError(
            "NOAUTH",
            "Authentication failed - not logged in (no token, or one that is unknown, "
            "lapsed or revoked)",
        )
    return user


def writer(user: User) -> User:
    """``user`` if their role may change the catalogue, else UNAUTH."""
    if user.role not in (Role.ADMIN, Role.TRAFFICKER):
        raise XandrError(
            "UNAUTH", f"this needs the role admin or trafficker; this user is a {user.role.value}"
        )
    return user
