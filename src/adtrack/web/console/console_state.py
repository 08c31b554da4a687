"""The console's part of the app's state: settings, the session codec and the templates."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates

from adtrack.config import Settings
from adtrack.web.console.auth import SessionCodec
from adtrack.web.state import web_state

__all__ = ["ConsoleState", "console_state"]


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
