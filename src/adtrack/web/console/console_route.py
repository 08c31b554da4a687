"""``ConsoleRoute``: how errors become pages.

Routers of the console use ``ConsoleRoute`` (``APIRouter(route_class=ConsoleRoute)``), which
turns the exceptions below and ``DomainError`` into HTML answers instead of the API's JSON:

- ``LoginRequired`` -> redirect to ``/login?next=...`` (for htmx: ``HX-Redirect``);
- ``SetupRequired`` -> redirect to ``/setup`` (the database has no user yet);
- ``CsrfError`` -> 403 page; ``DomainError`` -> a page with its status and message.

It also sets the cookie of a session started during the request.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Coroutine
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, Response

from adtrack.domain.errors import DomainError
from adtrack.services.validation_messages import validation_errors
from adtrack.web.console.access import LoginRequired, SetupRequired
from adtrack.web.console.auth import ConsoleSession
from adtrack.web.console.console_state import console_state
from adtrack.web.console.csrf import SAFE_METHODS, CsrfError
from adtrack.web.console.rendering import is_htmx, redirect, render, safe_next

__all__ = ["ConsoleRoute"]

Handler = Callable[[Request], Coroutine[object, object, Response]]


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
