"""SQL storage for users and API tokens (tables ``users`` and ``api_tokens``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from adtrack.adapters.sql.tables import api_tokens, users
from adtrack.adapters.sql.transaction import SqlTransaction
from adtrack.domain.errors import Conflict
from adtrack.domain.model import Role, State
from adtrack.services.users import ApiToken, User

__all__ = ["SqlUserRepository", "SqlUserUnitOfWork"]


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        state=State(row.state),
        created_at=_aware(row.created_at),
        last_modified=_aware(row.last_modified),
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=_aware(row.created_at),
        last_used_at=_aware(row.last_used_at),
        revoked_at=_aware(row.revoked_at),
    )


_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.role,
    users.c.state,
    users.c.created_at,
    users.c.last_modified,
)
_TOKEN_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.user_id,
    api_tokens.c.name,
    api_tokens.c.created_at,
    api_tokens.c.last_used_at,
    api_tokens.c.revoked_at,
)


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(users)).scalar_one())

    def count_active_admins(self) -> int:
        query = (
            select(func.count())
            .select_from(users)
            .where(users.c.role == Role.ADMIN.value, users.c.state == State.ACTIVE.value)
        )
        return int(self._conn.execute(query).scalar_one())

    def get(self, id: int) -> User | None:
        row = self._conn.execute(select(*_USER_COLUMNS).where(users.c.id == id)).first()
        return _user(row) if row else None

    def get_by_email(self, email: str) -> User | None:
        row = self._conn.execute(select(*_USER_COLUMNS).where(users.c.email == email)).first()
        return _user(row) if row else None

    def password_hash(self, user_id: int) -> str | None:
        query = select(users.c.password_hash).where(users.c.id == user_id)
        return self._conn.execute(query).scalar_one_or_none()

    def list_all(self) -> list[User]:
        rows = self._conn.execute(select(*_USER_COLUMNS).order_by(users.c.id))
        return [_user(row) for row in rows]

    def add(self, user: User, password_hash: str) -> User:
        values = {
            "email": user.email,
            "password_hash": password_hash,
            "role": user.role.value,
            "state": user.state.value,
            "created_at": user.created_at,
            "last_modified": user.last_modified,
        }
        try:
            # The service checks first; this catches a concurrent insert of the same email.
            new_id = self._conn.execute(insert(users).values(**values)).inserted_primary_key
        except IntegrityError:
            raise Conflict("email", f"a user with email {user.email} already exists") from None
        assert new_id is not None
        user.id = int(new_id[0])
        return user

    def update(self, user: User, password_hash: str | None = None) -> None:
        values: dict[str, object] = {
            "role": user.role.value,
            "state": user.state.value,
            "last_modified": user.last_modified,
        }
        if password_hash is not None:
            values["password_hash"] = password_hash
        self._conn.execute(update(users).where(users.c.id == user.id).values(**values))

    def add_token(self, token: ApiToken, token_hash: str) -> ApiToken:
        result = self._conn.execute(
            insert(api_tokens).values(
                user_id=token.user_id,
                token_hash=token_hash,
                name=token.name,
                created_at=token.created_at,
            )
        )
        assert result.inserted_primary_key is not None
        token.id = int(result.inserted_primary_key[0])
        return token

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        query = select(*_TOKEN_COLUMNS).where(api_tokens.c.token_hash == token_hash)
        row = self._conn.execute(query).first()
        return _token(row) if row else None

    def get_token(self, token_id: int) -> ApiToken | None:
        row = self._conn.execute(select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)).first()
        return _token(row) if row else None

    def list_tokens(self, user_id: int) -> list[ApiToken]:
        query = (
            select(*_TOKEN_COLUMNS).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id)
        )
        return [_token(row) for row in self._conn.execute(query)]

    def touch_token(self, token_id: int, at: datetime) -> None:
        self._conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at)
        )

    def revoke_token(self, token_id: int, at: datetime) -> None:
        self._conn.execute(
            update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=at)
        )


class SqlUserUnitOfWork(SqlTransaction):
    """One transaction on ``engine``; ``commit()`` makes it stick, anything else rolls back."""

    users: SqlUserRepository

    def _open(self, conn: Connection) -> None:
        self.users = SqlUserRepository(conn)
