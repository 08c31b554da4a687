"""``adtrack collector``: only the tracking endpoints, in this process (one worker) or in a
:class:`~adtrack.collector.pool.CollectorPool` of worker processes it supervises."""

from __future__ import annotations

import os
import signal
import sys
import threading

import uvloop

from adtrack.collector.countries import GeoDatabaseError, check_country_database
from adtrack.collector.listener import CollectorOptions, serve_collector_in_background
from adtrack.collector.pool import CollectorPool, reserve_port
from adtrack.config import Settings
from adtrack.supervisor import ChildStartError

__all__ = ["check_settings_country_database", "run_collectors"]


def check_settings_country_database(settings: Settings) -> None:
    """Refuse to start ``adtrack serve`` or ``adtrack collector`` with an unreadable
    ``ADTRACK_GEOIP_DB`` (before anything is printed or started)."""
    try:
        check_country_database(settings.geoip_db)
    except GeoDatabaseError as exc:
        print(f"adtrack: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def run_collectors(
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int = 1,
    trust_forwarded_for: bool = False,
    reuse_port: bool = False,
    writer_id: str | None = None,
) -> None:
    """Serve only the tracking endpoints on ``host:port`` until SIGINT/SIGTERM.

    One worker runs in this process; more run as a :class:`CollectorPool` (this process then
    only supervises them). Prints ``adtrack: collector listening on http://HOST:PORT (N
    workers)`` once every worker listens.
    """
    check_settings_country_database(settings)
    if workers > 1:
        _run_pool(settings, host, port, workers, trust_forwarded_for)
        return
    uvloop.run(_run_one_collector(settings, host, port, trust_forwarded_for, reuse_port, writer_id))


async def _run_one_collector(
    settings: Settings,
    host: str,
    port: int,
    trust_forwarded_for: bool,
    reuse_port: bool,
    writer_id: str | None,
) -> None:
    reservation = None
    if port == 0:  # learn the port before listening, to say where we listen
        reservation = reserve_port(host, 0)
        port, reuse_port = int(reservation.getsockname()[1]), True
    try:
        serving = await serve_collector_in_background(
            settings,
            host,
            port,
            CollectorOptions(writer_id, reuse_port, trust_forwarded_for),
        )
    finally:
        if reservation is not None:
            reservation.close()
    if serving is not None:
        print(f"adtrack: collector listening on http://{host}:{port} (1 worker)", flush=True)
        await serving


def _run_pool(
    settings: Settings, host: str, port: int, workers: int, trust_forwarded_for: bool
) -> None:
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    pool = CollectorPool(
        host,
        port,
        workers,
        writer_prefix=f"c{os.getpid()}-",
        trust_forwarded_for=trust_forwarded_for or settings.trust_forwarded_for,
    )
    try:
        pool.start()
    except ChildStartError as exc:
        print(f"adtrack: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    try:
        print(
            f"adtrack: collector listening on http://{host}:{pool.port} ({workers} workers)",
            flush=True,
        )
        pool.wait(stop)
    finally:
        pool.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
