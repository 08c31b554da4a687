"""User and API-token management (admin only), and ``GET /api/v1/me`` for any caller.

Creating a user and changing a password hash with argon2 on the bounded password threads
(``web/password_work.py``), never on the event loop; when they are saturated: 503 with
``Retry-After``. ``POST /users/{id}/revoke-sessions`` ends the user's console sessions (their
API tokens stay valid: revoke those one by one, or deactivate the user).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar, TypeVarTuple, Unpack

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adtrack.domain.model import Role, State
from adtrack.domain.validation import ID_MAX
from adtrack.services.json_fields import ApiModel, NotNull
from adtrack.services.ports import ApiToken, User
from adtrack.services.users import UserService
from adtrack.web.api.answers import ErrorOut
from adtrack.web.api.deps import CurrentUser, admin_access, get_users
from adtrack.web.api.errors import OpenApiResponses
from adtrack.web.api.jsonio import ApiJSONResponse, DecimalJSONRoute
from adtrack.web.sign_in import PasswordWorkBusy, run_password_work

__all__ = ["router"]

Users = Annotated[UserService, Depends(get_users)]
UserId = Annotated[int, Path(ge=1, le=ID_MAX, description="The user's id.")]
TokenId = Annotated[int, Path(ge=1, le=ID_MAX, description="The token's id.")]

_ERRORS: OpenApiResponses = {
    401: {"model": ErrorOut, "description": "No valid API token."},
    403: {"model": ErrorOut, "description": "Only admins manage users."},
    404: {"model": ErrorOut, "description": "No such user or token."},
    409: {"model": ErrorOut, "description": "Email taken, or the last admin would be lost."},
    422: {"model": ErrorOut, "description": "Invalid input; `field` names the culprit."},
}
_HASHING_ERRORS: OpenApiResponses = {
    **_ERRORS,
    503: {"model": ErrorOut, "description": "Every password-hashing thread is busy; retry."},
}

T = TypeVar("T")
Args = TypeVarTuple("Args")


async def _hashing(request: Request, fn: Callable[[Unpack[Args]], T], *args: *Args) -> T:
    """``fn(*args)`` (which hashes a password) on the password threads; 503 when saturated."""
    try:
        return await run_password_work(request, fn, *args)
    except PasswordWorkBusy as busy:
        raise HTTPException(
            status_code=503,
            detail=[{"field": "password", "message": "the server is busy hashing passwords"}],
            headers={"Retry-After": str(busy.retry_after)},
        ) from None


class UserOut(BaseModel):
    id: int
    email: str
    role: Role
    state: State
    created_at: datetime | None
    last_modified: datetime | None


class CreatedUserOut(UserOut):
    generated_password: str | None = Field(
        description="Set only when no password was given: shown this once."
    )


class UserCreate(ApiModel):
    email: str
    role: Role
    password: str | None = Field(
        default=None,
        description="At least 8 characters and hard to guess (zxcvbn score 3 or more); "
        "generated (and returned) when omitted.",
    )


class UserUpdate(ApiModel):
    role: Annotated[Role | None, NotNull] = Field(default=None)
    state: Annotated[State | None, NotNull] = Field(default=None)
    password: Annotated[str | None, NotNull] = Field(
        default=None,
        description="A new password (at least 8 characters, zxcvbn score 3 or more); ends "
        "the user's console sessions.",
    )


class RevokedSessionsOut(BaseModel):
    revoked: int = Field(description="How many console sessions were ended.")


class TokenCreate(ApiModel):
    name: str | None = Field(default=None, description="A label, e.g. what uses the token.")


class TokenOut(BaseModel):
    id: int
    user_id: int
    name: str | None
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class UserListOut(BaseModel):
    items: list[UserOut]
    total: int


class TokenListOut(BaseModel):
    items: list[TokenOut]
    total: int


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret to send as `Authorization: Bearer <token>`.")


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "state": user.state.value,
        "created_at": user.created_at,
        "last_modified": user.last_modified,
    }


def token_json(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


router = APIRouter(
    route_class=DecimalJSONRoute, default_response_class=ApiJSONResponse, tags=["users"]
)
_admin = [Depends(admin_access)]


@router.get("/me", response_model=UserOut, responses=_ERRORS, summary="The caller")
def me(user: CurrentUser) -> Response:
    return ApiJSONResponse(user_json(user))


@router.get(
    "/users",
    response_model=UserListOut,
    dependencies=_admin,
    responses=_ERRORS,
    summary="List users",
)
def list_users(users: Users) -> Response:
    items = [user_json(user) for user in users.list_users()]
    return ApiJSONResponse({"items": items, "total": len(items)})


@router.post(
    "/users",
    status_code=201,
    response_model=CreatedUserOut,
    dependencies=_admin,
    responses=_HASHING_ERRORS,
    summary="Create a user",
)
async def create_user(request: Request, body: UserCreate, users: Users) -> Response:
    created = await _hashing(request, users.create_user, body.email, body.role, body.password)
    content = {**user_json(created.user), "generated_password": created.generated_password}
    return ApiJSONResponse(content, status_code=201)


@router.get(
    "/users/{id}", response_model=UserOut, dependencies=_admin, responses=_ERRORS, summary="A user"
)
def get_user(id: UserId, users: Users) -> Response:
    return ApiJSONResponse(user_json(users.get_user(id)))


@router.patch(
    "/users/{id}",
    response_model=UserOut,
    dependencies=_admin,
    responses=_HASHING_ERRORS,
    summary="Change a user's role, state or password",
    description="Deactivating a user or setting a new password also ends the user's console "
    "sessions.",
)
async def update_user(request: Request, id: UserId, body: UserUpdate, users: Users) -> Response:
    changes = body.model_dump(exclude_unset=True)
    return ApiJSONResponse(user_json(await _hashing(request, users.update_user, id, changes)))


@router.post(
    "/users/{id}/revoke-sessions",
    response_model=RevokedSessionsOut,
    dependencies=_admin,
    responses=_ERRORS,
    summary="Sign a user out of the console everywhere",
    description="Ends every console session of the user. API tokens are not affected.",
)
def revoke_sessions(id: UserId, users: Users) -> Response:
    return ApiJSONResponse({"revoked": users.revoke_sessions(id)})


@router.get(
    "/users/{id}/tokens",
    response_model=TokenListOut,
    dependencies=_admin,
    responses=_ERRORS,
    summary="List a user's tokens (never their secrets)",
)
def list_tokens(id: UserId, users: Users) -> Response:
    items = [token_json(token) for token in users.list_tokens(id)]
    return ApiJSONResponse({"items": items, "total": len(items)})


@router.post(
    "/users/{id}/tokens",
    status_code=201,
    response_model=IssuedTokenOut,
    dependencies=_admin,
    responses=_ERRORS,
    summary="Create an API token for a user",
)
def create_token(id: UserId, users: Users, body: TokenCreate | None = None) -> Response:
    issued = users.create_token(id, body.name if body else None)
    return ApiJSONResponse({**token_json(issued.token), "token": issued.secret}, status_code=201)


@router.delete(
    "/users/{id}/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    dependencies=_admin,
    responses=_ERRORS,
    summary="Revoke a token",
)
def revoke_token(id: UserId, token_id: TokenId, users: Users) -> Response:
    users.revoke_token(id, token_id)
    return Response(status_code=204)
