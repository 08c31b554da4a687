"""The tracking endpoints as a thin ASGI app, for the main (API/console) port.

Same :class:`~adtrack.collector.core.TrackingCore` as the fast collector listener — one
implementation, two transports. Each request's event is appended on its own (concurrent appends
are grouped by the event-log writer); a store failure answers 503.

Mounting in the FastAPI/Starlette app::

    tracking = TrackingASGIApp(core, writer)
    for route in tracking_routes(tracking):
        app.router.routes.append(route)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.routing import Route

from adtrack.collector.conversions import CONVERSION_PATHS
from adtrack.collector.core import HEADER_FIELDS, TRACKING_PATHS, RequestView, TrackingCore
from adtrack.collector.responses import AnswerKind, asgi_parts
from adtrack.collector.viewability import VIEW_BEACON_PATH, VIEW_SCRIPT_PATH, versioned_request
from adtrack.services.ports import EventLogUnavailable, EventLogWriter

__all__ = ["TrackingASGIApp", "ViewScriptApp", "tracking_routes"]

log = logging.getLogger(__name__)

# Any: the ASGI spec's scope and message (as Starlette and uvicorn type them).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def request_view(scope: Scope) -> RequestView:
    """A :class:`RequestView` from an ASGI HTTP scope."""
    fields: dict[str, bytes] = {}
    for name, value in scope.get("headers") or ():
        field = HEADER_FIELDS.get(bytes(name).lower())
        if field is not None:
            previous = fields.get(field)
            fields[field] = value if previous is None else previous + b"," + value
    client = scope.get("client")
    return RequestView(
        str(scope.get("method", "GET")).upper(),
        str(scope.get("path", "")),
        bytes(scope.get("query_string", b"")),
        client_ip=str(client[0]) if client else None,
        **fields,
    )


class TrackingASGIApp:
    """ASGI app answering ``/imptr``, ``/clktrb``, ``/clktr``, the viewability beacons
    (``/viewtr``) and the conversions (``/sspx``, ``/px``) through the shared core."""

    def __init__(self, core: TrackingCore, writer: EventLogWriter) -> None:
        self.core = core
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        view = request_view(scope)
        core = self.core
        outcome = core.handle(view)
        if outcome.lookup is not None:
            found = await core.cache.lookup(outcome.lookup)
            outcome = core.handle(view, allow_lookup=False, looked_up=found)
        kind = outcome.kind
        if outcome.record is not None:
            try:
                await self.writer.append([outcome.record])
            except EventLogUnavailable as exc:
                log.warning("event log unavailable, answering 503: %s", exc)
                core.failed([outcome])
                kind = AnswerKind.UNAVAILABLE
            except Exception:
                log.exception("event log append failed, answering 503")
                core.failed([outcome])
                kind = AnswerKind.UNAVAILABLE
            else:
                core.committed([outcome])
        stored = kind != AnswerKind.UNAVAILABLE
        status, headers, body = asgi_parts(
            kind,
            outcome.location,
            outcome.body if stored else None,
            outcome.set_cookie if stored else None,
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if view.method == "HEAD" else body})


class ViewScriptApp:
    """``/v.js``: the viewability measurement script, cached long under its versioned URL (an
    ASGI app: Starlette would take a plain function for a request handler)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _view_script(scope, send)


async def _view_script(scope: Scope, send: Send) -> None:
    method = str(scope.get("method", "GET")).upper()
    if method not in ("GET", "HEAD"):
        kind = AnswerKind.METHOD_NOT_ALLOWED
    elif versioned_request(bytes(scope.get("query_string", b""))):
        kind = AnswerKind.VIEW_SCRIPT
    else:
        kind = AnswerKind.VIEW_SCRIPT_UNVERSIONED
    status, headers, body = asgi_parts(kind)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def tracking_routes(app: TrackingASGIApp) -> list[Route]:
    """Starlette routes for the tracking paths and the measurement script (any method: the
    core answers 405 to those it does not take)."""
    paths = (*TRACKING_PATHS, VIEW_BEACON_PATH, *CONVERSION_PATHS)
    return [Route(path, app, methods=None) for path in paths] + [
        Route(VIEW_SCRIPT_PATH, ViewScriptApp(), methods=None)
    ]
