"""Sign-in, sign-out and the first-run page that creates the admin of an empty database.

Sign-in is throttled per account and per client address (``services/sign_in_throttle.py``):
a locked one is answered 429 with ``Retry-After``, the same for unknown emails. Password work
runs on the bounded password threads (``web/password_work.py``), never on the event loop.
Signing out deletes the session's row, so a copy of the cookie is worthless afterwards.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.services.users import FirstAdmin, UserService, check_password, normalise_email
from adtrack.web.api.deps import get_users
from adtrack.web.console.access import Viewer, check_csrf, require_viewer, session_of
from adtrack.web.console.auth import SESSION_MAX_AGE, ConsoleSession
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.console_state import console_state
from adtrack.web.console.rendering import redirect, render, safe_next
from adtrack.web.sign_in import PasswordWorkBusy, attempt_sign_in, run_password_work

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

HOME = "/impression-trackers"


def set_session_cookie(request: Request, response: Response, session: ConsoleSession) -> Response:
    """Set the cookie of ``session`` (recorded first with ``open_user_session`` for a user)."""
    console_state(request).codec.write(response, session)
    request.state.new_console_session = None  # this one wins over any anonymous one
    return response


def open_user_session(request: Request, user_id: int) -> ConsoleSession:
    """A new session of ``user_id``, recorded in the database (blocking: call off the loop)."""
    session = ConsoleSession.for_user(user_id)
    get_users(request).open_session(user_id, session.nonce, timedelta(seconds=SESSION_MAX_AGE))
    return session


def _wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes" if minutes < 90 else f"{-(-minutes // 60)} hours"


@router.get("/", include_in_schema=False)
def home(viewer: Annotated[Viewer, Depends(require_viewer)], request: Request) -> Response:
    return redirect(request, HOME)


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    state = console_state(request)
    if not state.has_users and not get_users(request).list_users():
        return redirect(request, "/setup")
    return render(request, "login.html", {"next": safe_next(next, HOME), "values": {}})


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email") or "")
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""), HOME)
    context = {"next": target, "values": {"email": email}}
    if not (email and password):
        error = "The email or password is not right, or the account is inactive."
        return render(request, "login.html", {**context, "error": error}, status_code=401)
    try:
        outcome = await attempt_sign_in(request, email, password)
    except PasswordWorkBusy as busy:
        error = "The server is busy checking sign-ins. Try again in a moment."
        headers = {"Retry-After": str(busy.retry_after)}
        return render(
            request, "login.html", {**context, "error": error}, status_code=503, headers=headers
        )
    if outcome.throttled is not None:
        # The same words whether the account exists or not, and for either scope.
        error = (
            "Too many failed sign-ins for this account or from this address. "
            f"Try again in {_wait_text(outcome.retry_after)}."
        )
        headers = {"Retry-After": str(outcome.retry_after)}
        return render(
            request, "login.html", {**context, "error": error}, status_code=429, headers=headers
        )
    if outcome.user is None:
        error = "The email or password is not right, or the account is inactive."
        return render(request, "login.html", {**context, "error": error}, status_code=401)
    session = await run_in_threadpool(open_user_session, request, outcome.user.id)
    return set_session_cookie(request, redirect(request, target), session)


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    ending = session_of(request)
    if ending.user_id is not None:
        get_users(request).close_session(ending.nonce)
    response = redirect(request, "/login", flash="You are signed out.")
    return set_session_cookie(request, response, ConsoleSession.anonymous())


@router.get("/setup", include_in_schema=False)
def setup_form(request: Request) -> Response:
    if get_users(request).list_users():
        return redirect(request, "/login")
    return render(request, "setup.html", {"values": {}, "errors": {}})


@router.post("/setup", include_in_schema=False)
async def setup(request: Request) -> Response:
    service = get_users(request)
    form = await request.form()
    values = {"email": str(form.get("email") or "")}
    password = str(form.get("password") or "")
    confirm = str(form.get("password_confirm") or "")
    errors: dict[str, str] = {}
    try:
        first = await run_password_work(
            request, _create_admin, service, values["email"], password, confirm, errors
        )
    except PasswordWorkBusy as busy:
        errors["password"] = "the server is busy; try again in a moment"
        return render(
            request,
            "setup.html",
            {"values": values, "errors": errors},
            status_code=503,
            headers={"Retry-After": str(busy.retry_after)},
        )
    if errors:
        return render(request, "setup.html", {"values": values, "errors": errors}, status_code=422)
    if first is None:
        return redirect(request, "/login", flash="An admin exists already: sign in.")
    console_state(request).has_users = True
    request.state.console_session = await run_in_threadpool(
        open_user_session, request, first.user.id
    )
    response = render(
        request,
        "setup_done.html",
        {"email": first.user.email, "token": first.token},
    )
    return set_session_cookie(request, response, request.state.console_session)


def _create_admin(
    service: UserService, email: str, password: str, confirm: str, errors: dict[str, str]
) -> FirstAdmin | None:
    """Validate the first-run form into ``errors``, else create the admin with ``password``
    (``None`` when an admin exists already). Blocking: zxcvbn and argon2 inside."""
    try:
        email = normalise_email(email)
    except ValidationError as exc:
        errors["email"] = exc.message
    try:
        check_password(password, email)
    except ValidationError as exc:
        errors["password"] = exc.message
    if not errors and password != confirm:
        errors["password_confirm"] = "does not match the password"
    if errors:
        return None
    # bootstrap_admin is atomic: it creates the admin only while the user table is empty, so
    # two people racing through this page cannot both become admin.
    first = service.bootstrap_admin(email)
    if first is None:
        return None
    try:
        service.update_user(first.user.id, {"password": password})
    except DomainError as exc:  # cannot happen after check_password; never leave it unusable
        errors["password"] = exc.message
        return None
    return first
