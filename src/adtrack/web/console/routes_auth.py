"""Sign-in, sign-out and the first-run page that creates the admin of an empty database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adtrack.domain.errors import DomainError, ValidationError
from adtrack.services.users import check_password, normalise_email
from adtrack.web.console.auth import ConsoleSession
from adtrack.web.console.base import (
    ConsoleRoute,
    Viewer,
    check_csrf,
    console_state,
    get_users,
    redirect,
    render,
    require_viewer,
    safe_next,
)

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

HOME = "/impression-trackers"


def _start_session(request: Request, response: Response, session: ConsoleSession) -> Response:
    console_state(request).codec.write(response, session)
    request.state.new_console_session = None  # this one wins over any anonymous one
    return response


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
    user = get_users(request).verify_password(email, password) if email and password else None
    if user is None:
        return render(
            request,
            "login.html",
            {
                "next": target,
                "values": {"email": email},
                "error": "The email or password is not right, or the account is inactive.",
            },
            status_code=401,
        )
    return _start_session(request, redirect(request, target), ConsoleSession.for_user(user.id))


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    response = redirect(request, "/login", flash="You are signed out.")
    return _start_session(request, response, ConsoleSession.anonymous())


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
    errors: dict[str, str] = {}
    try:
        normalise_email(values["email"])
    except ValidationError as exc:
        errors["email"] = exc.message
    try:
        check_password(password)
    except ValidationError as exc:
        errors["password"] = exc.message
    if not errors and password != str(form.get("password_confirm") or ""):
        errors["password_confirm"] = "does not match the password"
    if errors:
        return render(request, "setup.html", {"values": values, "errors": errors}, status_code=422)
    # bootstrap_admin is atomic: it creates the admin only while the user table is empty, so
    # two people racing through this page cannot both become admin.
    first = service.bootstrap_admin(values["email"])
    if first is None:
        return redirect(request, "/login", flash="An admin exists already: sign in.")
    try:
        service.update_user(first.user.id, {"password": password})
    except DomainError as exc:  # cannot happen after check_password; never leave it unusable
        errors["password"] = exc.message
        return render(request, "setup.html", {"values": values, "errors": errors}, status_code=422)
    console_state(request).has_users = True
    request.state.console_session = ConsoleSession.for_user(first.user.id)
    response = render(
        request,
        "setup_done.html",
        {"email": first.user.email, "token": first.token},
    )
    return _start_session(request, response, request.state.console_session)
