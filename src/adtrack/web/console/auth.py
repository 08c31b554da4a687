"""Console sessions: a signed cookie naming the signed-in user.

The cookie ``adtrack_session`` holds ``{"u": user id or null, "n": nonce}`` signed (HMAC-SHA1
via ``itsdangerous``, with a timestamp) by the session secret. Nothing secret is in it; the
signature makes it unforgeable and the timestamp lets it expire after ``SESSION_MAX_AGE``.

- A signed-in session is also a row in the database (``console_sessions``, keyed by the SHA-256
  of the nonce), checked on every request with the user: signing out, an admin's "sign out
  everywhere", deactivating the user and setting a new password delete the rows, so a copy of
  the cookie taken before is refused after. The signature alone is not enough.
- The nonce is fresh at every sign-in and sign-out (no session fixation); the CSRF token of a
  session is derived from it (``csrf.py``), so a token is worthless with another session.
- An anonymous visitor also gets a session (no user) so the sign-in form is CSRF-protected.
- Cookie attributes: ``HttpOnly``, ``SameSite=Lax``, ``Path=/`` and ``Secure`` unless
  ``ADTRACK_COOKIE_SECURE=0`` (for plain-http use on localhost).

The secret is ``ADTRACK_SESSION_SECRET`` when set (give every process of one deployment the
same); otherwise one is generated on first use and kept in ``<data dir>/session_secret`` (mode
0600), so sessions survive restarts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from adtrack.config import Settings

__all__ = [
    "COOKIE_NAME",
    "SESSION_MAX_AGE",
    "ConsoleSession",
    "SessionCodec",
    "load_session_secret",
]

log = logging.getLogger(__name__)

COOKIE_NAME = "adtrack_session"
FLASH_COOKIE = "adtrack_flash"
SESSION_MAX_AGE = 12 * 3600  # seconds: a working day, then sign in again
SECRET_FILE = "session_secret"
_MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie says: who is signed in (``None``: nobody) and the session's nonce."""

    user_id: int | None
    nonce: str

    @classmethod
    def anonymous(cls) -> ConsoleSession:
        return cls(None, secrets.token_urlsafe(18))

    @classmethod
    def for_user(cls, user_id: int) -> ConsoleSession:
        return cls(user_id, secrets.token_urlsafe(18))


def load_session_secret(settings: Settings) -> str:
    """The configured secret, else the one kept in the data directory (created on first use)."""
    if settings.session_secret:
        if len(settings.session_secret) < _MIN_SECRET_LENGTH:
            log.warning("ADTRACK_SESSION_SECRET is short; use at least 32 random characters")
        return settings.session_secret
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_text().strip() or _create_secret(path)
    except FileNotFoundError:
        return _create_secret(path)
    except OSError as exc:
        log.warning("cannot read %s (%s): console sessions end at restart", path, exc)
        return secrets.token_urlsafe(48)


def _create_secret(path: Path) -> str:
    secret = secrets.token_urlsafe(48)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()  # another process won the race: use its secret
    except OSError as exc:
        log.warning("cannot write %s (%s): console sessions end at restart", path, exc)
        return secret
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


class SessionCodec:
    """Signs and reads the session and flash cookies, and sets them on responses."""

    def __init__(self, secret: str, *, secure: bool = True) -> None:
        self.secret = secret
        self.secure = secure
        self._sessions = URLSafeTimedSerializer(secret, salt="adtrack.console.session")
        self._flash = URLSafeTimedSerializer(secret, salt="adtrack.console.flash")

    # --- the session ------------------------------------------------------------------------

    def encode(self, session: ConsoleSession) -> str:
        return self._sessions.dumps({"u": session.user_id, "n": session.nonce})

    def decode(self, value: str | None) -> ConsoleSession | None:
        if not value:
            return None
        try:
            data = self._sessions.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        user_id, nonce = data.get("u"), data.get("n")
        if not isinstance(nonce, str) or not nonce:
            return None
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
            return None
        return ConsoleSession(user_id, nonce)

    def read(self, request: Request) -> ConsoleSession | None:
        return self.decode(request.cookies.get(COOKIE_NAME))

    def write(self, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.encode(session),
            max_age=SESSION_MAX_AGE,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    # --- flash messages (shown once on the next page) ----------------------------------------

    def write_flash(self, response: Response, message: str, kind: str = "success") -> None:
        response.set_cookie(
            FLASH_COOKIE,
            self._flash.dumps({"m": message[:500], "k": kind}),
            max_age=120,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def read_flash(self, request: Request) -> tuple[str, str] | None:
        value = request.cookies.get(FLASH_COOKIE)
        if not value:
            return None
        with contextlib.suppress(BadSignature):
            data = self._flash.loads(value, max_age=300)
            if isinstance(data, dict) and isinstance(data.get("m"), str):
                kind = data.get("k") if data.get("k") in ("success", "error") else "success"
                return data["m"], str(kind)
        return None

    def clear_flash(self, response: Response) -> None:
        response.delete_cookie(FLASH_COOKIE, path="/", secure=self.secure, httponly=True)
