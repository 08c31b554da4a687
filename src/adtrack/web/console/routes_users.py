"""Users (admins only): the list, adding a user with a role, changing role and state,
setting a new password, and signing a user out everywhere (ending their console sessions).
The last active admin cannot be demoted or deactivated. Password hashing runs on the password
threads, off the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from adtrack.domain.errors import DomainError
from adtrack.domain.model import Role
from adtrack.services.users import NewUser
from adtrack.web.api.deps import get_users
from adtrack.web.console.access import AdminDep, check_csrf
from adtrack.web.console.console_route import ConsoleRoute
from adtrack.web.console.rendering import redirect, render
from adtrack.web.console.routes_auth import open_user_session, set_session_cookie
from adtrack.web.sign_in import PasswordWorkBusy, run_password_work

BUSY = "the server is busy hashing passwords; try again in a moment"

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

ROLE_OPTIONS = (
    ("admin", "Admin: everything, manages users"),
    ("trafficker", "Trafficker: catalogue and trackers"),
    ("reporter", "Reporter: read-only and reports"),
)


def _page(
    request: Request,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    created: NewUser | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "users.html",
        {
            "users": get_users(request).list_users(),
            "values": values or {"role": "trafficker"},
            "errors": errors or {},
            "roles": ROLE_OPTIONS,
            "created": created,
            "section": "users",
        },
        status_code=status_code,
    )


@router.get("/users", include_in_schema=False)
def users_page(request: Request, viewer: AdminDep) -> Response:
    return _page(request)


@router.post("/users", include_in_schema=False)
async def create_user(request: Request, viewer: AdminDep) -> Response:
    form = await request.form()
    values = {"email": str(form.get("email") or ""), "role": str(form.get("role") or "")}
    password = str(form.get("password") or "") or None
    service = get_users(request)
    try:
        created = await run_password_work(
            request, service.create_user, values["email"], values["role"], password
        )
    except PasswordWorkBusy:
        return _page(request, values, {"password": BUSY}, status_code=503)
    except DomainError as exc:
        return _page(request, values, {exc.field: exc.message}, status_code=422)
    return _page(request, created=created)


@router.post("/users/{user_id:int}", include_in_schema=False)
async def update_user(user_id: int, request: Request, viewer: AdminDep) -> Response:
    form = await request.form()
    changes: dict[str, str] = {}
    for name in ("role", "state", "password"):
        value = str(form.get(name) or "")
        if value:
            changes[name] = value
    try:
        user = await run_password_work(request, get_users(request).update_user, user_id, changes)
    except PasswordWorkBusy:
        return redirect(request, "/users", flash=f"password: {BUSY}", flash_kind="error")
    except DomainError as exc:
        return redirect(request, "/users", flash=f"{exc.field}: {exc.message}", flash_kind="error")
    response = redirect(request, "/users", flash=f"Saved {user.email}.")
    if user.id == viewer.user.id and "password" in changes and user.is_active:
        # A new password ends every session of the user, this one too: keep the admin who
        # changed their own password signed in here, on a fresh session.
        session = await run_in_threadpool(open_user_session, request, user.id)
        set_session_cookie(request, response, session)
    return response


@router.post("/users/{user_id:int}/revoke-sessions", include_in_schema=False)
def revoke_sessions(user_id: int, request: Request, viewer: AdminDep) -> Response:
    service = get_users(request)
    try:
        ended = service.revoke_sessions(user_id)
        email = service.get_user(user_id).email
    except DomainError as exc:
        return redirect(request, "/users", flash=f"{exc.field}: {exc.message}", flash_kind="error")
    return redirect(request, "/users", flash=f"Signed {email} out everywhere ({ended} sessions).")


__all__ = ["router", "Role"]
