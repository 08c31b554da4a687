"""Users (admins only): the list, adding a user with a role, changing role and state, and
setting a new password. The last active admin cannot be demoted or deactivated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adtrack.domain.errors import DomainError
from adtrack.domain.model import Role
from adtrack.web.console.base import (
    AdminDep,
    ConsoleRoute,
    check_csrf,
    get_users,
    redirect,
    render,
)

router = APIRouter(route_class=ConsoleRoute, dependencies=[Depends(check_csrf)])

ROLE_OPTIONS = (
    ("admin", "Admin: everything, manages users"),
    ("trafficker", "Trafficker: catalogue and trackers"),
    ("reporter", "Reporter: read-only and reports"),
)


def _page(
    request: Request,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    created: Any = None,
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
    try:
        created = get_users(request).create_user(values["email"], values["role"], password)
    except DomainError as exc:
        return _page(request, values, {exc.field: exc.message}, status_code=422)
    return _page(request, created=created)


@router.post("/users/{user_id:int}", include_in_schema=False)
async def update_user(user_id: int, request: Request, viewer: AdminDep) -> Response:
    form = await request.form()
    changes: dict[str, Any] = {}
    for name in ("role", "state", "password"):
        value = str(form.get(name) or "")
        if value:
            changes[name] = value
    try:
        user = get_users(request).update_user(user_id, changes)
    except DomainError as exc:
        return redirect(request, "/users", flash=f"{exc.field}: {exc.message}", flash_kind="error")
    return redirect(request, "/users", flash=f"Saved {user.email}.")


__all__ = ["router", "Role"]
