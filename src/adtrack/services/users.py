"""Users, roles and API tokens: who may call the management API, and as what.

- Passwords are hashed with argon2id (``argon2-cffi``); only the hash is stored.
- API tokens are ``secrets.token_urlsafe(32)`` strings shown once; only their SHA-256 hex digest
  is stored, so a leaked database does not leak usable tokens. A token is looked up by digest
  (a high-entropy secret needs no slow KDF).
- Roles (``domain.model.Role``): ``admin`` does everything and manages users, ``trafficker``
  manages the catalogue and trackers, ``reporter`` only reads.
- New passwords must pass ``password_policy.check_new_password`` (length and zxcvbn strength).
- Console sessions live in the database (only the SHA-256 of their secret), so signing out,
  "revoke all sessions", deactivating a user and setting a new password end them server-side.
  API tokens are separate credentials: revoking sessions leaves them alone (deactivation
  disables them too, through ``authenticate``).

Storage goes through the ``UserUnitOfWork`` port (``services/ports/users.py``); the SQL adapter
is ``adapters/sql/users.py``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from adtrack.domain.errors import Conflict, NotFound, ValidationError
from adtrack.domain.model import Role, State
from adtrack.domain.utc import utc_now
from adtrack.services.password_policy import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_new_password,
)
from adtrack.services.ports import ApiToken, User, UserUnitOfWork

__all__ = [
    "FirstAdmin",
    "IssuedToken",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "NewUser",
    "PasswordCheck",
    "UserService",
    "check_password",
    "generate_password",
    "hash_token",
    "normalise_email",
    "parse_role",
    "parse_state",
]

MAX_EMAIL_LENGTH = 320
MAX_TOKEN_NAME_LENGTH = 100
# Tokens we issue are 43 characters; anything much longer is not one of ours.
MAX_TOKEN_LENGTH = 256
# Recording every use of a token would turn each read into a write; once a minute is plenty.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: ``secret`` is what the client sends, shown only this once."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class NewUser:
    """A user just created; ``generated_password`` is set when we made the password up."""

    user: User
    generated_password: str | None


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of checking sign-in credentials: the user, or why not (``failure``:
    ``malformed_email``, ``unknown_account``, ``wrong_password`` or ``inactive``)."""

    user: User | None
    failure: str | None = None


@dataclass(frozen=True)
class FirstAdmin:
    """The admin created on the first start of an empty database, with its secrets."""

    user: User
    password: str
    token: str


def hash_token(secret: str) -> str:
    """The stored form of an API token: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token_secret() -> str:
    return secrets.token_urlsafe(32)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def normalise_email(email: object) -> str:
    if not isinstance(email, str):
        raise ValidationError("email", "must be a string")
    cleaned = email.strip().lower()
    if not cleaned:
        raise ValidationError("email", "must not be empty")
    if len(cleaned) > MAX_EMAIL_LENGTH:
        raise ValidationError("email", f"must be at most {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL_RE.match(cleaned) or "\x00" in cleaned:
        raise ValidationError("email", "must be an email address like name@example.com")
    return cleaned


def parse_role(role: object) -> Role:
    if isinstance(role, Role):
        return role
    if isinstance(role, str) and role.strip().lower() in {r.value for r in Role}:
        return Role(role.strip().lower())
    allowed = ", ".join(r.value for r in Role)
    raise ValidationError("role", f"must be one of: {allowed}")


def parse_state(state: object) -> State:
    if isinstance(state, State):
        return state
    if isinstance(state, str) and state.strip().lower() in {s.value for s in State}:
        return State(state.strip().lower())
    raise ValidationError("state", "must be 'active' or 'inactive'")


def check_password(password: object, email: str | None = None) -> str:
    """A new password for the user with ``email``, or ``ValidationError("password", ...)``."""
    return check_new_password(password, [email] if email else ())


def hash_session(secret: str) -> str:
    """The stored form of a console session's secret: SHA-256, hex (like API tokens)."""
    return hashlib.sha256(b"session:" + secret.encode("utf-8")).hexdigest()


def hash_api_session(secret: str) -> str:
    """The stored form of an API session's token (``open_api_session``): SHA-256, hex, apart
    from console sessions' so neither secret works as the other."""
    return hashlib.sha256(b"api-session:" + secret.encode("utf-8")).hexdigest()


def check_token_name(name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValidationError("name", "must be a string")
    cleaned = name.strip()
    if len(cleaned) > MAX_TOKEN_NAME_LENGTH:
        raise ValidationError("name", f"must be at most {MAX_TOKEN_NAME_LENGTH} characters")
    if "\x00" in cleaned:
        raise ValidationError("name", "must not contain NUL characters")
    return cleaned or None


class UserService:
    def __init__(
        self,
        uow_factory: Callable[[], UserUnitOfWork],
        *,
        clock: Callable[[], datetime] = utc_now,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._hasher = hasher or PasswordHasher()

    # -- users -------------------------------------------------------------------------------

    def create_user(self, email: str, role: Role | str, password: str | None = None) -> NewUser:
        """Create a user; a password is generated (and returned once) when none is given."""
        email = normalise_email(email)
        parsed_role = parse_role(role)
        generated = None
        if password is None:
            generated = password = generate_password()
        password_hash = self._hasher.hash(check_password(password, email))
        now = self._clock()
        with self._uow_factory() as uow:
            if uow.users.get_by_email(email) is not None:
                raise Conflict("email", f"a user with email {email} already exists")
            user = uow.users.add(User(0, email, parsed_role, State.ACTIVE, now, now), password_hash)
            uow.commit()
        return NewUser(user, generated)

    def get_user(self, user_id: int) -> User:
        with self._uow_factory() as uow:
            user = uow.users.get(user_id)
        if user is None:
            raise NotFound("id", f"no user with id {user_id}")
        return user

    def get_user_by_email(self, email: str) -> User:
        email = normalise_email(email)
        with self._uow_factory() as uow:
            user = uow.users.get_by_email(email)
        if user is None:
            raise NotFound("email", f"no user with email {email}")
        return user

    def list_users(self) -> list[User]:
        with self._uow_factory() as uow:
            return uow.users.list_all()

    def update_user(self, user_id: int, changes: Mapping[str, object]) -> User:
        """Change ``role``, ``state`` and/or ``password``.

        The last active admin cannot be demoted or deactivated: nobody could manage users then.
        """
        unknown = set(changes) - {"role", "state", "password"}
        if unknown:
            raise ValidationError(sorted(unknown)[0], "cannot be changed")
        password_hash = None
        if "password" in changes:
            # Checked against the user's email, hashed outside the transaction (~250 ms).
            password_hash = self._hasher.hash(
                check_password(changes["password"], self.get_user(user_id).email)
            )
        with self._uow_factory() as uow:
            user = uow.users.get(user_id)
            if user is None:
                raise NotFound("id", f"no user with id {user_id}")
            updated = replace(user, last_modified=self._clock())
            if "role" in changes:
                updated.role = parse_role(changes["role"])
            if "state" in changes:
                updated.state = parse_state(changes["state"])
            was_admin = user.role is Role.ADMIN and user.is_active
            stays_admin = updated.role is Role.ADMIN and updated.is_active
            if was_admin and not stays_admin and uow.users.count_active_admins() <= 1:
                field = "role" if updated.role is not Role.ADMIN else "state"
                raise Conflict(field, "the last active admin cannot be demoted or deactivated")
            uow.users.update(updated, password_hash)
            if not updated.is_active or password_hash is not None:
                # A deactivated user, or one whose password was reset (maybe because it
                # leaked), must not stay signed in anywhere.
                uow.users.delete_sessions_of(user_id)
            uow.commit()
        return updated

    def verify_password(self, email: str, password: str) -> User | None:
        """The active user with these credentials, or ``None`` (for a login form)."""
        return self.check_credentials(email, password).user

    def check_credentials(self, email: str, password: str) -> PasswordCheck:
        """The active user with these credentials, or why not.

        An unknown email costs the same argon2 time as a wrong password, so response times
        don't reveal which emails have accounts.
        """
        try:
            email = normalise_email(email)
        except ValidationError:
            return PasswordCheck(None, "malformed_email")
        with self._uow_factory() as uow:
            user = uow.users.get_by_email(email)
            stored = uow.users.password_hash(user.id) if user else None
            if user is None or stored is None:
                self._hasher.hash(password or "-")
                return PasswordCheck(None, "unknown_account")
            try:
                self._hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return PasswordCheck(None, "wrong_password")
            if not user.is_active:
                return PasswordCheck(None, "inactive")
            if self._hasher.check_needs_rehash(stored):
                uow.users.update(user, self._hasher.hash(password))
                uow.commit()
            return PasswordCheck(user)

    # -- console sessions --------------------------------------------------------------------

    def open_session(self, user_id: int, secret: str, lifetime: timedelta) -> None:
        """Record a console session of ``user_id`` whose cookie carries ``secret``."""
        now = self._clock()
        with self._uow_factory() as uow:
            uow.users.delete_expired_sessions(now)  # sign-ins are rare: a fine time to tidy up
            uow.users.add_session(user_id, hash_session(secret), now, now + lifetime)
            uow.commit()

    def session_user(self, user_id: int, secret: str) -> User | None:
        """The active user ``user_id`` if ``secret`` is a live session of theirs, else ``None``."""
        with self._uow_factory() as uow:
            owner = uow.users.session_owner(hash_session(secret), self._clock())
            if owner is None or owner != user_id:
                return None
            user = uow.users.get(user_id)
        return user if user is not None and user.is_active else None

    def close_session(self, secret: str) -> None:
        """End one session (sign-out); a cookie copied before keeps no power."""
        with self._uow_factory() as uow:
            uow.users.delete_session(hash_session(secret))
            uow.commit()

    def revoke_sessions(self, user_id: int) -> int:
        """End every console session of the user (API tokens stay); how many were ended."""
        with self._uow_factory() as uow:
            if uow.users.get(user_id) is None:
                raise NotFound("id", f"no user with id {user_id}")
            ended = uow.users.delete_sessions_of(user_id)
            uow.commit()
        return ended

    # -- API sessions ------------------------------------------------------------------------
    # Tokens that a sign-in over an API hands out (the compatible API's ``POST /xandr/auth``)
    # and that lapse after ``idle`` without a call. They live with the console sessions, so
    # signing out everywhere, deactivation and a new password end them too.

    def open_api_session(self, user_id: int, idle: timedelta) -> str:
        """A new API session of ``user_id``; returns its token (shown only this once)."""
        secret = new_token_secret()
        now = self._clock()
        with self._uow_factory() as uow:
            uow.users.delete_expired_sessions(now)
            uow.users.add_session(user_id, hash_api_session(secret), now, now + idle)
            uow.commit()
        return secret

    def api_session_user(self, secret: str | None, idle: timedelta) -> User | None:
        """The active user owning this live API session, whose expiry moves to ``idle`` from
        now; or ``None``."""
        if not secret or len(secret) > MAX_TOKEN_LENGTH:
            return None
        now = self._clock()
        with self._uow_factory() as uow:
            owner = uow.users.renew_session(hash_api_session(secret), now, now + idle)
            user = uow.users.get(owner) if owner is not None else None
            if user is None or not user.is_active:
                return None
            uow.commit()
        return user

    # -- tokens ------------------------------------------------------------------------------

    def create_token(self, user_id: int, name: str | None = None) -> IssuedToken:
        name = check_token_name(name)
        secret = new_token_secret()
        with self._uow_factory() as uow:
            if uow.users.get(user_id) is None:
                raise NotFound("id", f"no user with id {user_id}")
            token = uow.users.add_token(
                ApiToken(0, user_id, name, self._clock()), hash_token(secret)
            )
            uow.commit()
        return IssuedToken(token, secret)

    def create_token_for_email(self, email: str, name: str | None = None) -> IssuedToken:
        return self.create_token(self.get_user_by_email(email).id, name)

    def list_tokens(self, user_id: int) -> list[ApiToken]:
        self.get_user(user_id)
        with self._uow_factory() as uow:
            return uow.users.list_tokens(user_id)

    def revoke_token(self, user_id: int, token_id: int) -> None:
        with self._uow_factory() as uow:
            token = uow.users.get_token(token_id)
            if token is None or token.user_id != user_id:
                raise NotFound("token_id", f"user {user_id} has no token with id {token_id}")
            if token.revoked_at is None:
                uow.users.revoke_token(token_id, self._clock())
                uow.commit()

    def authenticate(self, secret: str | None) -> User | None:
        """The active user owning this live token, or ``None``."""
        if not secret or len(secret) > MAX_TOKEN_LENGTH:
            return None
        with self._uow_factory() as uow:
            token = uow.users.token_by_hash(hash_token(secret))
            if token is None or token.revoked_at is not None:
                return None
            user = uow.users.get(token.user_id)
            if user is None or not user.is_active:
                return None
            now = self._clock()
            if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
                uow.users.touch_token(token.id, now)
                uow.commit()
            return user

    # -- first run ---------------------------------------------------------------------------

    def bootstrap_admin(self, email: str) -> FirstAdmin | None:
        """On an empty user table, create an admin with a generated password and a token.

        Returns ``None`` when any user exists already, so the secrets are only ever shown once.
        """
        email = normalise_email(email)
        password = generate_password()
        password_hash = self._hasher.hash(password)
        secret = new_token_secret()
        now = self._clock()
        with self._uow_factory() as uow:
            if uow.users.count() > 0:
                return None
            user = uow.users.add(User(0, email, Role.ADMIN, State.ACTIVE, now, now), password_hash)
            uow.users.add_token(ApiToken(0, user.id, "first run", now), hash_token(secret))
            uow.commit()
        return FirstAdmin(user, password, secret)
