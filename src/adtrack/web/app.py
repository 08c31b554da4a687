"""The FastAPI application: management API under ``/api/v1`` (OpenAPI at
``/api/v1/openapi.json``, interactive docs at ``/docs``), ``GET /healthz`` (liveness) and
``GET /readyz`` (readiness: 503 with the reason while events or the database cannot be written).

``create_app`` only wires the web layer to the services ``adtrack.bootstrap`` built; it does not
migrate the database (``adtrack serve`` and ``adtrack db upgrade`` do).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from adtrack import __version__
from adtrack.bootstrap import Services
from adtrack.collector.asgi import TrackingASGIApp, tracking_routes
from adtrack.collector.control import CollectorChannels
from adtrack.collector.hits import RecentHits
from adtrack.web.api import (
    catalogue,
    exports,
    feeds,
    history_imports,
    imports,
    network_report,
    saved_reports,
    summary,
    users,
)
from adtrack.web.api.errors import ERROR_RESPONSES, install_error_handlers
from adtrack.web.api_docs import add_api_docs
from adtrack.web.console import mount_console
from adtrack.web.console.hits import HitSource, MergedHits
from adtrack.web.metrics_route import collector_metrics, metrics_route
from adtrack.web.password_work import PasswordWork
from adtrack.web.security_headers import SecurityHeadersMiddleware
from adtrack.web.state import WebState
from adtrack.web.xandr_compat import XANDR_PREFIX, create_xandr_app

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"

_DESCRIPTION = """\
Manage the tracker catalogue: advertisers, line items, publishers, placements, payment rules,
impression trackers and click trackers.

Every call needs `Authorization: Bearer <token>`. Roles: **admin** (everything, manages users),
**trafficker** (catalogue and trackers), **reporter** (read-only).

Money is in currency units with at most 6 decimals, sent and returned as JSON numbers
(`"cost_cpm": 2.5`); `revshare` is a fraction from 0 to 1. Errors name the field at fault:
`{"detail": [{"field": "revenue_value", "message": "..."}]}`.
"""


def create_app(
    services: Services,
    *,
    tracking: TrackingASGIApp | None = None,
    collectors: CollectorChannels | None = None,
) -> FastAPI:
    """The web application serving with ``services`` (their export worker runs while the app
    does; the caller closes them).

    With ``tracking``, the tracking endpoints (``/imptr``, ``/clktrb``, ``/clktr``) also answer
    on this app, through the same core as the collector's own listener. ``collectors`` are the
    control channels of collector processes: the console's live hits and the main port's
    ``/metrics`` (``ADTRACK_METRICS=main``) include theirs.
    """
    settings = services.settings
    db = services.engine

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if services.export_worker is not None:  # tag exports by email, in the background
            services.export_worker.start()
        # What is loaded now (framework, routes, templates, metadata) lives as long as the
        # process: out of the cycle collector's way, which otherwise rescans it all while a
        # big report builds its rows (measured: a third of a 90-day report's CPU time).
        gc.collect()
        gc.freeze()
        yield
        if services.export_worker is not None:
            services.export_worker.stop()

    app = FastAPI(
        title="adtrack",
        version=__version__,
        description=_DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # our own page with vendored assets (api_docs.py)
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app, services.storage_failure)
    app.add_middleware(SecurityHeadersMiddleware)
    add_api_docs(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> PlainTextResponse:
        # With tracking endpoints: whether their event log takes writes (asked on the loop that
        # owns the writer); else whether the database answers (in a thread: it may be slow).
        if tracking is not None:
            reason = tracking.writer.readiness()
        else:
            reason = await run_in_threadpool(_database_problem, db)
        if reason is None:
            return PlainTextResponse("ready\n")
        return PlainTextResponse(f"not ready: {reason}\n", status_code=503)

    # Every API operation documents the shared error answers (errors.ERROR_RESPONSES).
    for router in (
        catalogue.router,
        users.router,
        exports.router,
        network_report.router,
        feeds.router,
        saved_reports.router,
        imports.router,
        history_imports.router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    # The web console (/login, /impression-trackers, ...) and /static
    console = mount_console(app, settings)
    # GET /reports/summary
    app.include_router(summary.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    local_hits = tracking.core.hits if tracking is not None else RecentHits()
    recent_hits: HitSource = (
        local_hits if collectors is None else MergedHits([local_hits, collectors])
    )
    # The original platform's API under /xandr/ (ADTRACK_COMPAT_API=xandr, docs/xandr-api.md).
    xandr_app = create_xandr_app() if settings.compat_api == "xandr" else None
    if xandr_app is not None:
        app.mount(XANDR_PREFIX, xandr_app)
    app.state.web = WebState(
        services=services,
        password_work=PasswordWork(settings.password_hash_threads, settings.password_hash_queue),
        console=console,
        recent_hits=recent_hits,
        collector_metrics=partial(
            collector_metrics, tracking.core.metrics if tracking is not None else None, collectors
        ),
    )
    if xandr_app is not None:
        xandr_app.state.web = app.state.web
    app.router.routes.append(metrics_route())
    if tracking is not None:
        app.router.routes.extend(tracking_routes(tracking))
    return app


def _database_problem(db: Engine) -> str | None:
    """None if the database answers a trivial query, else why not."""
    try:
        with db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database unavailable: {type(exc).__name__}"
    return None
