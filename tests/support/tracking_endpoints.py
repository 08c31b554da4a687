"""The tracking endpoints served both ways for HTTP tests, on a SQLite catalogue the test fills:
the bare collector (the tracking port) and the ASGI transport under uvicorn (the main port's
tracking paths), each sealing click tokens with the test's secret."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.asgi import TrackingASGIApp, tracking_routes
from adtrack.collector.core import TrackingCore
from adtrack.collector.hits import RecentHits
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.domain.click_tokens import ClickTokens
from tests.support.collector import settings_for, start_thread_collector
from tests.support.net import LOOPBACK, free_port, wait_for_port

__all__ = ["TRANSPORTS", "Served", "serve_tracking"]

TRANSPORTS = ("collector", "main_port")


@dataclass
class Served:
    url: str
    log_dir: Path
    catalogue: dict[str, Any]  # what ``fill`` returned


@contextmanager
def serve_tracking(
    transport: str, tmp: Path, fill: Callable[[Engine], dict[str, Any]], secret: str
) -> Iterator[Served]:
    """The endpoints on ``transport`` (one of :data:`TRANSPORTS`) over a new database that
    ``fill`` gets first; events go to a local log with ``fsync=always``."""
    url = f"sqlite:///{tmp / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        catalogue = fill(engine)
        if transport == "collector":
            settings = settings_for(tmp, url, ADTRACK_TOKEN_SECRET=secret)
            collector = start_thread_collector(settings, engine, fsync="always")
            try:
                yield Served(collector.url, collector.log_dir, catalogue)
            finally:
                collector.stop()
        else:
            with _asgi(tmp, engine, secret) as (base_url, log_dir):
                yield Served(base_url, log_dir, catalogue)
    finally:
        engine.dispose()


@contextmanager
def _asgi(tmp: Path, engine: Engine, secret: str) -> Iterator[tuple[str, Path]]:
    cache = TrackerCache(SqlTrackerCatalogue(engine), poll_interval=0.2)
    cache.load()
    cache.start()
    log_dir = tmp / "eventlog"
    writer = LocalEventLogWriter(log_dir, fsync="always")
    core = TrackingCore(cache, hits=RecentHits(), click_tokens=ClickTokens(secret.encode()))
    app = Starlette(routes=tracking_routes(TrackingASGIApp(core, writer)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for_port(LOOPBACK, port, 15)
        yield f"http://{LOOPBACK}:{port}", log_dir
    finally:
        server.should_exit = True
        thread.join(10)
        cache.stop()
