"""What every console page needs: the signed-in user, role checks, CSRF, templates, and how
errors become pages.

Routers of the console use ``ConsoleRoute`` (``APIRouter(route_class=ConsoleRoute)``), which
turns the exceptions below and ``DomainError`` into HTML answers instead of the API's JSON:

- ``LoginRequired`` -> redirect to ``/login?next=...`` (for htmx: ``HX-Redirect``);
- ``SetupRequired`` -> redirect to ``/setup`` (the database has no user yet);
- ``CsrfError`` -> 403 page; ``DomainError`` -> a page with its status and message.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adtrack.config import Settings
from adtrack.domain.errors import DomainError, PermissionDenied
from adtrack.domain.model import Role
from adtrack.domain.money import format_micros
from adtrack.services.users import User
from adtrack.services.validation_messages import validation_errors
from adtrack.web.api.deps import get_catalogue, get_users
from adtrack.web.console.auth import ConsoleSession, SessionCodec
from adtrack.web.console.csrf import (
    SAFE_METHODS,
    CsrfError,
    csrf_token,
    request_token,
    tokens_match,
)
from adtrack.web.state import web_state

__all__ = [
    "WRITE_ROLES",
    "ConsoleRoute",
    "ConsoleState",
    "LoginRequired",
    "SetupRequired",
    "Viewer",
    "console_state",
    "get_catalogue",
    "get_users",
    "is_htmx",
    "redirect",
    "render",
    "require_editor",
    "require_admin",
    "require_viewer",
    "session_of",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"
WRITE_ROLES = frozenset({Role.ADMIN, Role.TRAFFICKER})


class LoginRequired(Exception):
    """Nobody (or an inactive user) is signed in."""


class SetupRequired(Exception):
    """The database has no user yet: the first-run page must create the admin."""


@dataclass
class ConsoleState:
    """The console's part of the app's state (``WebState.console``)."""

    settings: Settings
    codec: SessionCodec
    templates: Jinja2Templates
    has_users: bool = False  # once true, stays true: the first-run check costs nothing then

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)


def console_state(request: Request) -> ConsoleState:
    return web_state(request).console


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# --- sessions, users and roles ---------------------------------------------------------------


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


async def check_csrf(request: Request) -> None:
    """Router dependency: refuse state-changing requests without the session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = csrf_for(request)
    if getattr(request.state, "new_console_session", None) is not None:
        raise CsrfError("no session cookie came with the request")
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


# --- rendering -------------------------------------------------------------------------------


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters["money"] = money_text
    env.filters["urlq"] = lambda value: quote(str(value), safe="")
    env.globals["query"] = query_string
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates


def money_text(micros: int | None) -> str:
    """Micros as a short decimal: 2500000 -> "2.50", 1234 -> "0.001234"."""
    if micros is None:
        return ""
    text = format_micros(micros).rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def query_string(base: Mapping[str, Any], **changes: Any) -> str:
    """``base`` with ``changes`` applied, as ``?a=1&b=2`` (``None`` values dropped)."""
    merged = {**base, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else "?"


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def local_date(value: datetime | None, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).date().isoformat()


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    state = console_state(request)
    zone = state.zone
    viewer = getattr(request.state, "viewer", None)
    flash = state.codec.read_flash(request)
    full: dict[str, Any] = {
        "viewer": viewer,
        "user": viewer.user if viewer else None,
        "csrf_token": csrf_for(request),
        "flash": flash,
        "htmx": is_htmx(request),
        "timezone": state.settings.timezone,
        "fmt_time": lambda value: local_time(value, zone),
        "fmt_date": lambda value: local_date(value, zone),
        **(context or {}),
    }
    response = state.templates.TemplateResponse(
        request, template, full, status_code=status_code, headers=dict(headers or {})
    )
    if flash is not None:
        state.codec.clear_flash(response)
    return response


def redirect(
    request: Request, url: str, *, flash: str | None = None, flash_kind: str = "success"
) -> Response:
    """See-other to ``url``; htmx requests get ``HX-Redirect`` (a full page load) instead."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash:
        console_state(request).codec.write_flash(response, flash, flash_kind)
    return response


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths: ``/trackers`` yes, ``//evil.example`` and ``https://...`` no."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


# --- the route class -------------------------------------------------------------------------

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ConsoleRoute(APIRoute):
    """Console routes answer HTML for the console's exceptions and domain errors, and set the
    cookie of a session started during the request."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                if request.method not in SAFE_METHODS or is_htmx(request):
                    # Re-posting after sign-in would lose the form; return to the page instead.
                    target = request.headers.get("hx-current-url") or "/"
                    target = safe_next(_path_of(target))
                response = redirect(request, "/login?" + urlencode({"next": target}))
            except SetupRequired:
                response = redirect(request, "/setup")
            except CsrfError as exc:
                response = _error_page(request, 403, "Security check failed", str(exc))
            except RequestValidationError as exc:  # a path or query value of the wrong type
                status, detail = validation_errors(exc.errors())
                message = "; ".join(f"{item['field']}: {item['message']}" for item in detail)
                response = _error_page(request, status, "Cannot do that", message)
            except DomainError as exc:
                title = "Not allowed" if exc.status == 403 else "Not found"
                if exc.status not in (403, 404):
                    title = "Cannot do that"
                message = exc.message
                if exc.status == 422 and exc.field:
                    message = f"{exc.field}: {message}"  # the value in the URL or form at fault
                response = _error_page(request, exc.status, title, message)
            new_session = getattr(request.state, "new_console_session", None)
            if isinstance(new_session, ConsoleSession):
                console_state(request).codec.write(response, new_session)
            return response

        return handler


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    if is_htmx(request):
        # Shown in the page's notice area by app.js (htmx does not swap error answers).
        return HTMLResponse(message, status_code=status)
    try:
        viewer = getattr(request.state, "viewer", None)
        request.state.viewer = viewer
        return render(
            request, "error.html", {"title": title, "message": message}, status_code=status
        )
    except Exception:  # the error page must never fail
        return HTMLResponse(
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>", status_code=status
        )
