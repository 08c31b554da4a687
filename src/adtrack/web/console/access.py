"""Who may see and do what in the console: the request's session, the signed-in user and
their role, the first-run check and the CSRF check of state-changing requests.

The exceptions below are answered by ``ConsoleRoute`` (``console_route.py``):
``LoginRequired`` with a redirect to the sign-in page, ``SetupRequired`` with one to ``/setup``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from adtrack.domain.errors import DomainError, PermissionDenied
from adtrack.domain.model import Role
from adtrack.services.ports import User
from adtrack.web.api.deps import get_users
from adtrack.web.console.auth import ConsoleSession
from adtrack.web.console.console_state import console_state
from adtrack.web.console.csrf import (
    SAFE_METHODS,
    CsrfError,
    csrf_token,
    request_token,
    tokens_match,
)
from adtrack.web.state import services

__all__ = [
    "WRITE_ROLES",
    "AdminDep",
    "EditorDep",
    "LoginRequired",
    "SetupRequired",
    "Viewer",
    "ViewerDep",
    "check_csrf",
    "csrf_for",
    "require_admin",
    "require_editor",
    "require_viewer",
    "session_of",
]

WRITE_ROLES = frozenset({Role.ADMIN, Role.TRAFFICKER})


class LoginRequired(Exception):
    """Nobody (or an inactive user) is signed in."""


class SetupRequired(Exception):
    """The database has no user yet: the first-run page must create the admin."""


def session_of(request: Request) -> ConsoleSession:
    """The request's session, or a new anonymous one (stored on ``request.state`` so the
    response can set the cookie)."""
    cached = getattr(request.state, "console_session", None)
    if isinstance(cached, ConsoleSession):
        return cached
    state = console_state(request)
    session = state.codec.read(request)
    if session is None:
        session = ConsoleSession.anonymous()
        request.state.new_console_session = session
    request.state.console_session = session
    return session


def csrf_for(request: Request) -> str:
    state = console_state(request)
    return csrf_token(state.codec.secret, session_of(request).nonce)


def ensure_setup_done(request: Request) -> None:
    state = console_state(request)
    if not state.has_users:
        if not get_users(request).list_users():
            raise SetupRequired()
        state.has_users = True


class UploadRefused(DomainError):
    """A file upload the console will not read (see ``refuse_unbounded_upload``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__("file", message)
        self.status = status


# Room for a multipart body's boundaries, part headers and other fields around its files.
_MULTIPART_OVERHEAD = 1024 * 1024


def refuse_unbounded_upload(request: Request, session: ConsoleSession) -> None:
    """A file upload (a multipart form) is read whole, its files spooled to disk, before its
    route runs, so check first: only a signed-in user may send one, with a ``Content-Length``
    (browsers always give it) no larger than the largest upload a console page takes."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return
    if session.user_id is None:
        raise LoginRequired()
    settings = services(request).settings
    largest = max(
        settings.import_max_bytes, settings.report_history_max_bytes, settings.tag_file_max_bytes
    )
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise UploadRefused(411, "a file upload must say its length (Content-Length)")
    if int(length) > largest + _MULTIPART_OVERHEAD:
        raise UploadRefused(
            413,
            f"the upload is {int(length)} bytes; the largest file a console page takes is "
            f"{largest} bytes (ADTRACK_IMPORT_MAX_BYTES, ADTRACK_REPORT_HISTORY_MAX_BYTES, "
            "ADTRACK_TAG_FILE_MAX_BYTES)",
        )


async def check_csrf(request: Request) -> None:
    """Router dependency: refuse state-changing requests without the session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = csrf_for(request)
    if getattr(request.state, "new_console_session", None) is not None:
        raise CsrfError("no session cookie came with the request")
    refuse_unbounded_upload(request, session_of(request))
    if not tokens_match(expected, await request_token(request)):
        raise CsrfError("the form's security token is missing or out of date")


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request."""

    user: User

    @property
    def can_edit(self) -> bool:
        return self.user.role in WRITE_ROLES

    @property
    def is_admin(self) -> bool:
        return self.user.role is Role.ADMIN


def require_viewer(request: Request) -> Viewer:
    ensure_setup_done(request)
    session = session_of(request)
    if session.user_id is None:
        raise LoginRequired()
    # The session must still be in the database: signed out, revoked and expired ones are not.
    user = get_users(request).session_user(session.user_id, session.nonce)
    if user is None:
        raise LoginRequired()
    viewer = Viewer(user)
    request.state.viewer = viewer
    return viewer


def require_editor(viewer: Annotated[Viewer, Depends(require_viewer)]) -> Viewer:
    if not viewer.can_edit:
        raise PermissionDenied(
            "role", f"the {viewer.user.role.value} role can look but not change anything"
        )
    return viewer


def require_admin(viewer: Annotated[Viewer, Depends(require_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise PermissionDenied("role", "only an admin can manage users")
    return viewer


ViewerDep = Annotated[Viewer, Depends(require_viewer)]
EditorDep = Annotated[Viewer, Depends(require_editor)]
AdminDep = Annotated[Viewer, Depends(require_admin)]
