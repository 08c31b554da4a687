"""FastAPI dependencies: the services of the app (``adtrack.web.state``), the caller, and role
checks.

- ``authenticated``: the user owning the request's ``Authorization: Bearer <token>``, or 401
  with ``WWW-Authenticate: Bearer``.
- ``require_role(*roles)``: a dependency that also refuses other roles with 403.
- ``read_access`` (any role) and ``write_access`` (admin, trafficker) for the catalogue;
  ``admin_access`` for user management.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adtrack.domain.errors import PermissionDenied
from adtrack.domain.model import Role
from adtrack.services.catalogue import CatalogueService
from adtrack.services.ports import User
from adtrack.services.users import UserService
from adtrack.web.state import services

__all__ = [
    "CurrentUser",
    "admin_access",
    "authenticated",
    "get_catalogue",
    "get_users",
    "read_access",
    "require_role",
    "write_access",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `Authorization: Bearer <token>` "
    "(`adtrack tokens create --email E` prints one).",
)


def get_catalogue(request: Request) -> CatalogueService:
    return services(request).catalogue


def get_users(request: Request) -> UserService:
    return services(request).users


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=401,
        detail=[{"field": "authorization", "message": message}],
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    users: Annotated[UserService, Depends(get_users)],
) -> User:
    if credentials is None:
        raise _unauthorized("an 'Authorization: Bearer <token>' header is required")
    user = users.authenticate(credentials.credentials)
    if user is None:
        raise _unauthorized("the token is unknown, revoked or belongs to an inactive user")
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(authenticated)]


def require_role(*roles: Role | str) -> Callable[[User], User]:
    """A dependency returning the caller if their role is one of ``roles``, else 403."""
    allowed = frozenset(Role(role) for role in roles)
    names = " or ".join(sorted(role.value for role in allowed))

    def check_role(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise PermissionDenied(
                "role", f"this needs the role {names}; this token's user is a {user.role.value}"
            )
        return user

    return check_role


read_access = authenticated
write_access = require_role(Role.ADMIN, Role.TRAFFICKER)
admin_access = require_role(Role.ADMIN)
