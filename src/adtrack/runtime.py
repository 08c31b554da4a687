"""Running adtrack: ``serve`` migrates the database, creates the first admin on an empty
database, and runs the web server until it is told to stop (Ctrl-C / SIGTERM)."""

from __future__ import annotations

import asyncio
import os
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
    """
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        ensure_first_admin(engine)
        asyncio.run(_serve(settings, engine, host, port, tracking_port))
    finally:
        engine.dispose()


async def _serve(
    settings: Settings, engine: Engine, host: str, port: int, tracking_port: int
) -> None:
    config = uvicorn.Config(
        create_app(settings, engine=engine),
        host=host,
        port=port,
        # Access logs would go to stdout, which callers may read for the lines above and
        # then stop draining; errors still reach stderr.
        access_log=False,
        log_level="info",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started:
        print(
            f"adtrack: listening on http://{host}:{_bound_port(server, port)} "
            f"(tracking on http://{host}:{tracking_port})",
            flush=True,
        )
    await task
    if not server.started:
        # uvicorn reports why (e.g. the port is taken) and returns; make the exit code say so.
        sys.exit(1)


def _bound_port(server: uvicorn.Server, requested: int) -> int:
    """The port actually bound (differs from ``requested`` only when that was 0)."""
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return requested
