"""SQL storage for users, API tokens, console sessions and the sign-in throttle (tables
``users``, ``api_tokens``, ``console_sessions`` and ``sign_in_failures``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from adtrack.adapters.sql.rows import SqlRow
from adtrack.adapters.sql.tables import api_tokens, console_sessions, sign_in_failures, users
from adtrack.adapters.sql.transaction import SqlTransaction
from adtrack.domain.errors import Conflict
from adtrack.domain.model import Role, State
from adtrack.domain.sign_in_lockout import FailureRecord, Scope
from adtrack.domain.utc import as_utc
from adtrack.services.ports import ApiToken, User

# How stale a session's stored expiry may get before a renewal writes the new one.
SESSION_RENEW_INTERVAL = timedelta(minutes=1)

__all__ = ["SqlSignInFailures", "SqlUserRepository", "SqlUserUnitOfWork"]


def _user(row: SqlRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        state=State(row.state),
        created_at=as_utc(row.created_at),
        last_modified=as_utc(row.last_modified),
    )


def _token(row: SqlRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=as_utc(row.created_at),
        last_used_at=as_utc(row.last_used_at),
        revoked_at=as_utc(row.revoked_at),
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

    # -- console sessions --------------------------------------------------------------------

    def add_session(
        self, user_id: int, session_hash: str, created_at: datetime, expires_at: datetime
    ) -> None:
        self._conn.execute(
            insert(console_sessions).values(
                session_hash=session_hash,
                user_id=user_id,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    def session_owner(self, session_hash: str, now: datetime) -> int | None:
        query = select(console_sessions.c.user_id).where(
            console_sessions.c.session_hash == session_hash,
            console_sessions.c.expires_at > now,
        )
        owner = self._conn.execute(query).scalar_one_or_none()
        return int(owner) if owner is not None else None

    def renew_session(self, session_hash: str, now: datetime, expires_at: datetime) -> int | None:
        query = select(console_sessions.c.user_id, console_sessions.c.expires_at).where(
            console_sessions.c.session_hash == session_hash,
            console_sessions.c.expires_at > now,
        )
        row = self._conn.execute(query).one_or_none()
        if row is None:
            return None
        # Moving the expiry on every call would make each read a write; a minute is plenty.
        if as_utc(row.expires_at) < expires_at - SESSION_RENEW_INTERVAL:
            self._conn.execute(
                update(console_sessions)
                .where(console_sessions.c.session_hash == session_hash)
                .values(expires_at=expires_at)
            )
        return int(row.user_id)

    def delete_session(self, session_hash: str) -> None:
        self._conn.execute(
            delete(console_sessions).where(console_sessions.c.session_hash == session_hash)
        )

    def delete_sessions_of(self, user_id: int) -> int:
        result = self._conn.execute(
            delete(console_sessions).where(console_sessions.c.user_id == user_id)
        )
        return int(result.rowcount)

    def delete_expired_sessions(self, now: datetime) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))


def _failure_record(row: SqlRow) -> FailureRecord:
    window_start = as_utc(row.window_start)
    assert window_start is not None
    return FailureRecord(
        failures=row.failures,
        window_start=window_start,
        locked_until=as_utc(row.locked_until),
        lockouts=row.lockouts,
    )


class SqlSignInFailures:
    """The sign-in throttle's records (``services.sign_in_throttle.ThrottleStore``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _key(self, scope: Scope, subject: str) -> ColumnElement[bool]:
        return and_(sign_in_failures.c.scope == scope, sign_in_failures.c.subject == subject)

    def get(self, scope: Scope, subject: str, *, for_update: bool = False) -> FailureRecord | None:
        if for_update:
            # A no-op write first: it takes SQLite's write lock before the read (so two
            # writers queue on the busy timeout instead of failing on a stale snapshot) and
            # locks the row on PostgreSQL like SELECT ... FOR UPDATE.
            self._conn.execute(
                update(sign_in_failures)
                .where(self._key(scope, subject))
                .values(failures=sign_in_failures.c.failures)
            )
        row = self._conn.execute(select(sign_in_failures).where(self._key(scope, subject))).first()
        return _failure_record(row) if row else None

    def put(self, scope: Scope, subject: str, record: FailureRecord, expires_at: datetime) -> None:
        values = {
            "failures": record.failures,
            "window_start": record.window_start,
            "locked_until": record.locked_until,
            "lockouts": record.lockouts,
            "expires_at": expires_at,
        }
        result = self._conn.execute(
            update(sign_in_failures).where(self._key(scope, subject)).values(**values)
        )
        if result.rowcount:
            return
        try:
            self._conn.execute(
                insert(sign_in_failures).values(scope=scope, subject=subject, **values)
            )
        except IntegrityError:
            raise Conflict("subject", f"{scope} {subject!r} was inserted concurrently") from None

    def delete(self, scope: Scope, subject: str) -> None:
        self._conn.execute(delete(sign_in_failures).where(self._key(scope, subject)))

    def delete_expired(self, now: datetime) -> None:
        self._conn.execute(delete(sign_in_failures).where(sign_in_failures.c.expires_at <= now))


class SqlUserUnitOfWork(SqlTransaction):
    """One transaction on ``engine``; ``commit()`` makes it stick, anything else rolls back."""

    users: SqlUserRepository
    sign_in_failures: SqlSignInFailures

    def _open(self, conn: Connection) -> None:
        self.users = SqlUserRepository(conn)
        self.sign_in_failures = SqlSignInFailures(conn)
