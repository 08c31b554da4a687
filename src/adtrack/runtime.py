"""Running adtrack: ``serve`` migrates the database, creates the first admin on an empty
database, and runs the web server until it is told to stop (Ctrl-C / SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from functools import partial

import uvicorn
import uvloop
from sqlalchemy import Engine

from adtrack.adapters.eventlog.factory import open_reader
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.adapters.sql.users import SqlUserUnitOfWork
from adtrack.aggregator.runner import Aggregator
from adtrack.collector.asgi import TrackingASGIApp
from adtrack.collector.core import TrackingCore
from adtrack.collector.server import open_event_writer, start_collector
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.config import Settings
from adtrack.exports_runtime import build_mailer
from adtrack.services.retention import purge_periodically
from adtrack.services.saved_reports import deliver_scheduled_reports
from adtrack.services.users import FirstAdmin, UserService
from adtrack.web.app import create_app

__all__ = ["DEFAULT_ADMIN_EMAIL", "ensure_first_admin", "serve", "user_service"]

DEFAULT_ADMIN_EMAIL = "admin@example.com"

log = logging.getLogger(__name__)


def user_service(engine: Engine) -> UserService:
    return UserService(partial(SqlUserUnitOfWork, engine))


def ensure_first_admin(engine: Engine, email: str | None = None) -> FirstAdmin | None:
    """Create and announce the admin of a database with no users (and do nothing otherwise).

    The three lines are printed once, ever: later starts find a user and stay quiet.
    """
    email = email or os.environ.get("ADTRACK_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    first = user_service(engine).bootstrap_admin(email)
    if first is not None:
        print(f"adtrack: first run - created admin user {first.user.email}")
        print(f"adtrack: admin password: {first.password}")
        print(f"adtrack: admin token: {first.token}", flush=True)
    return first


def serve(settings: Settings, host: str, port: int, tracking_port: int) -> None:
    """Migrate, bootstrap the first admin, then serve the API on ``host:port`` until stopped.

    ``tracking_port`` is where the collector (the fast tracking listener) listens.
    The port is taken before the first-run lines are printed, so a start that cannot listen
    does not use up the only printing of the admin's password and token.
    """
    upgrade(settings.database_url)
    try:
        api_socket = listen(host, port)
    except OSError as exc:
        print(f"adtrack: cannot listen on {host}:{port}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    engine = make_engine(settings.database_url)
    try:
        ensure_first_admin(engine)
        uvloop.run(_serve(settings, engine, api_socket, host, tracking_port))
    finally:
        engine.dispose()
        api_socket.close()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


async def _serve(
    settings: Settings, engine: Engine, api_socket: socket.socket, host: str, tracking_port: int
) -> None:
    """Everything of one box in one event loop: the collector on ``tracking_port``, the same
    tracking core mounted on the API port, the aggregator, and the API/console."""
    cache = TrackerCache(engine)
    await asyncio.to_thread(cache.load)
    cache.start()
    writer = await open_event_writer(settings)
    core = TrackingCore(cache, honour_privacy_signals=settings.honour_privacy_signals)
    stop = asyncio.Event()
    background: list[asyncio.Task[None]] = []
    collector = None
    periodic: list[asyncio.Task[None]] = []
    try:
        collector = await start_collector(
            settings, host, tracking_port, writer=writer, cache=cache, core=core
        )
        aggregator = Aggregator(open_reader(settings, consumer="aggregator"), engine)
        background.append(asyncio.create_task(aggregator.run_forever(stop)))
        periodic = _housekeeping(settings, engine)
        app = create_app(settings, engine=engine, tracking=TrackingASGIApp(core, writer))
        config = uvicorn.Config(
            app,
            # Access logs would go to stdout, which callers may read for the lines above and
            # then stop draining; errors still reach stderr.
            access_log=False,
            log_level="info",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[api_socket]))
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            port = api_socket.getsockname()[1]
            print(
                f"adtrack: listening on http://{host}:{port} "
                f"(tracking on http://{host}:{collector.port})",
                flush=True,
            )
        await task
    finally:
        # Answer what the collector still holds (after its events are stored), then let the
        # aggregator finish its batch before the writer and the cache go away.
        if collector is not None:
            await collector.aclose()
        stop.set()
        for job in periodic:
            job.cancel()
        for job in (*background, *periodic):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await job
        await writer.close()
        cache.stop()


def _housekeeping(settings: Settings, engine: Engine) -> list[asyncio.Task[None]]:
    """The periodic jobs: purge raw events past retention; send scheduled reports."""
    tasks = [asyncio.create_task(purge_periodically(engine, settings))]
    mailer = build_mailer(settings)
    if mailer is not None:
        tasks.append(
            asyncio.create_task(
                deliver_scheduled_reports(engine, mailer, default_timezone=settings.timezone)
            )
        )
    return tasks
