"""Running adtrack: ``serve`` migrates the database, creates the first admin on an empty
database, and runs the web server until it is told to stop (Ctrl-C / SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from functools import partial

import uvicorn
from sqlalchemy import Engine

from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.adapters.sql.users import SqlUserUnitOfWork
from adtrack.config import Settings
from adtrack.services.users import FirstAdmin, UserService
from adtrack.web.app import create_app

__all__ = ["DEFAULT_ADMIN_EMAIL", "ensure_first_admin", "serve", "user_service"]

DEFAULT_ADMIN_EMAIL = "admin@example.com"


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

    ``tracking_port`` is where the collector listens (announced now; started by the collector).
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
        asyncio.run(_serve(settings, engine, api_socket, host, tracking_port))
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
    config = uvicorn.Config(
        create_app(settings, engine=engine),
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
            f"(tracking on http://{host}:{tracking_port})",
            flush=True,
        )
    await task
