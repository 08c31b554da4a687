"""Users, API tokens and console sessions as stored: the records and the repository the user
service works with.

Adapter: ``adapters/sql/users.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from adtrack.domain.model import Role, State
from adtrack.services.ports.catalogue_store import Transaction

__all__ = ["ApiToken", "User", "UserRepository", "UserUnitOfWork"]


@dataclass
class User:
    id: int
    email: str
    role: Role
    state: State = State.ACTIVE
    created_at: datetime | None = None
    last_modified: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.state is State.ACTIVE


@dataclass
class ApiToken:
    """A token's record (never its secret)."""

    id: int
    user_id: int
    name: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class UserRepository(Protocol):
    def count(self) -> int: ...

    def count_active_admins(self) -> int: ...

    def get(self, id: int) -> User | None: ...

    def get_by_email(self, email: str) -> User | None: ...

    def password_hash(self, user_id: int) -> str | None: ...

    def list_all(self) -> list[User]: ...

    def add(self, user: User, password_hash: str) -> User:
        """Store a user (``id`` 0); raise ``Conflict("email", ...)`` if the email is taken."""
        ...

    def update(self, user: User, password_hash: str | None = None) -> None:
        """Save role/state/last_modified, and the password hash when given."""
        ...

    def add_token(self, token: ApiToken, token_hash: str) -> ApiToken: ...

    def token_by_hash(self, token_hash: str) -> ApiToken | None: ...

    def get_token(self, token_id: int) -> ApiToken | None: ...

    def list_tokens(self, user_id: int) -> list[ApiToken]: ...

    def touch_token(self, token_id: int, at: datetime) -> None: ...

    def revoke_token(self, token_id: int, at: datetime) -> None: ...

    def add_session(
        self, user_id: int, session_hash: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    def session_owner(self, session_hash: str, now: datetime) -> int | None:
        """The user id of the unexpired session with this hash, or ``None``."""
        ...

    def renew_session(self, session_hash: str, now: datetime, expires_at: datetime) -> int | None:
        """The user id of the unexpired session with this hash, its expiry moved to
        ``expires_at`` when that is over a minute later than the stored one; or ``None``."""
        ...

    def delete_session(self, session_hash: str) -> None: ...

    def delete_sessions_of(self, user_id: int) -> int:
        """End every session of the user; returns how many there were."""
        ...

    def delete_expired_sessions(self, now: datetime) -> None: ...


class UserUnitOfWork(Transaction, Protocol):
    """The user repository in one transaction."""

    @property
    def users(self) -> UserRepository: ...
