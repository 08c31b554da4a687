"""What the web app holds: one typed :class:`WebState` on ``app.state.web``, set by
``create_app``, instead of loose attributes of ``app.state``.

Routes reach it through the dependencies here: :func:`services` (the container built by
``adtrack.bootstrap``) and :func:`web_state` (the parts that belong to the web process: the
password-hashing threads, the console, the live hits and the collectors' metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from adtrack.bootstrap import Services
from adtrack.web.password_work import PasswordWork

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from adtrack.web.console.console_state import ConsoleState
    from adtrack.web.console.hits import HitSource

__all__ = ["WebState", "services", "state_of", "web_state"]


@dataclass
class WebState:
    services: Services
    password_work: PasswordWork  # argon2 off the event loop
    console: ConsoleState
    # Live hits in the console: the ring of this process's tracking core merged with those of
    # the collector processes.
    recent_hits: HitSource
    # The collectors' metrics text for the main port's /metrics (ADTRACK_METRICS=main).
    collector_metrics: Callable[[], list[tuple[str, bytes]]]


def state_of(app: Starlette) -> WebState:
    state: WebState = app.state.web
    return state


def web_state(request: HTTPConnection) -> WebState:
    return state_of(request.app)


def services(request: HTTPConnection) -> Services:
    return state_of(request.app).services
