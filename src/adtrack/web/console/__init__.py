"""The web console: server-rendered pages (Jinja2 + htmx) for traffickers, reporters and admins.

``mount_console(app)`` adds its routes at the site root (``/login``, ``/impression-trackers``,
``/reports``...) and its static files under ``/static``. See ``docs/console.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from adtrack.config import Settings

if TYPE_CHECKING:
    from adtrack.web.console.console_state import ConsoleState

__all__ = ["STATIC_DIR", "mount_console"]

STATIC_DIR = Path(__file__).parent / "static"


def mount_console(app: FastAPI, settings: Settings) -> ConsoleState:
    """Add the console's routes to ``app``; returns its state, for the app's ``WebState``."""
    from adtrack.web.console import (
        catalogue_screens,
        routes_auth,
        routes_catalogue,
        routes_exports,
        routes_history_imports,
        routes_imports,
        routes_reports,
        routes_trackers,
        routes_users,
    )
    from adtrack.web.console.auth import SessionCodec, load_session_secret
    from adtrack.web.console.console_state import ConsoleState
    from adtrack.web.console.rendering import make_templates

    templates = make_templates()
    templates.env.globals["describe_revenue"] = catalogue_screens.describe_revenue
    templates.env.globals["describe_pricing"] = catalogue_screens.describe_pricing
    console = ConsoleState(
        settings=settings,
        codec=SessionCodec(load_session_secret(settings), secure=settings.cookie_secure),
        templates=templates,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (
        routes_auth,
        routes_trackers,
        routes_exports,
        routes_imports,
        routes_reports,
        routes_users,
        routes_catalogue,
        routes_history_imports,
    ):
        app.include_router(module.router)
    return console
