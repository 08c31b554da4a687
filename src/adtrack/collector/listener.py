"""Starting and running a collector (the fast tracking listener); the HTTP it speaks per
connection is :mod:`adtrack.collector.http_protocol`.

* :func:`build_core` — the tracking core a collector or the main port's tracking paths run,
  from ``Settings`` (privacy signals, forwarded-for, redirect policy, the country database and
  the visitor caches).
* :func:`start_collector` — start listening on the running event loop with a given event-log
  writer and tracker cache (used by ``adtrack serve``, which runs it next to the API, and by
  tests). Returns a :class:`CollectorServer`.
* :func:`run_collector` — a blocking entry point that builds everything from ``Settings``
  (through ``adtrack.bootstrap``: store engine, tracker cache with its polling thread,
  event-log writer) on uvloop and runs
  until SIGINT/SIGTERM (``adtrack collector``, ``python -m adtrack.collector``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop

from adtrack import bootstrap
from adtrack.collector.control import ControlServer, start_control_server
from adtrack.collector.core import TrackingCore
from adtrack.collector.countries import open_country_database
from adtrack.collector.hits import RecentHits
from adtrack.collector.http_protocol import ConnectionLimits, HttpCollector
from adtrack.collector.invalid_traffic import judges_for
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.collector.viewability import Viewability
from adtrack.collector.visitor import VisitorFragments
from adtrack.config import Settings
from adtrack.services.ports import EventLogWriter

__all__ = [
    "CollectorOptions",
    "CollectorServer",
    "build_core",
    "run_collector",
    "serve_collector_in_background",
    "start_collector",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectorOptions:
    """How one collector process listens and writes, beyond ``Settings``.

    ``writer_id`` names its event-log writer (stable per worker; default: random per process);
    ``reuse_port`` lets several processes share the port (``SO_REUSEPORT``);
    ``trust_forwarded_for`` takes the client IP from the last ``X-Forwarded-For`` entry (only
    behind a trusted load balancer); ``control_socket``: where to answer the main process's
    control requests (live hits, metrics; see :mod:`adtrack.collector.control`), if anywhere.
    """

    writer_id: str | None = None
    reuse_port: bool = False
    trust_forwarded_for: bool = False
    control_socket: Path | None = None


class CollectorServer:
    """A listening collector: the asyncio server plus the parts tests and the console use."""

    def __init__(self, server: asyncio.Server, http: HttpCollector) -> None:
        self.server = server
        self.http = http
        self.core: TrackingCore = http.core

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self.server.sockets)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop accepting connections."""
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()

    async def aclose(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, answer what is pending (after its events are stored), close."""
        self.server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.http.batcher.wait_idle(), drain_timeout)
        self.http.stop_ticker()
        self.http.close_connections()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 2.0)


def build_core(
    settings: Settings,
    cache: TrackerCache,
    *,
    trust_forwarded_for: bool = False,
    hits: RecentHits | None = None,
) -> TrackingCore:
    """The tracking core for ``settings``: the client address comes from ``X-Forwarded-For``
    when ``trust_forwarded_for`` (the collector's flag) or ``ADTRACK_TRUST_FORWARDED_FOR`` says
    so. Raises :class:`~adtrack.collector.countries.GeoDatabaseError` when
    ``ADTRACK_GEOIP_DB`` names a file that cannot be read."""
    bots, datacentres = judges_for(settings)
    visitor = VisitorFragments(
        open_country_database(settings.geoip_db),
        max_addresses=settings.address_cache_entries,
        max_user_agents=settings.user_agent_cache_entries,
    )
    return TrackingCore(
        cache,
        honour_privacy_signals=settings.honour_privacy_signals,
        trust_forwarded_for=trust_forwarded_for or settings.trust_forwarded_for,
        redirect_policy=settings.redirect_policy,
        hits=hits,
        visitor=visitor,
        click_tokens=bootstrap.build_click_tokens(settings),
        viewability=Viewability(bootstrap.build_view_tokens(settings), settings.view_beacon_days),
        bots=bots,
        datacentres=datacentres,
    )


async def start_collector(
    settings: Settings,
    host: str | None,
    port: int,
    *,
    writer: EventLogWriter,
    cache: TrackerCache,
    core: TrackingCore | None = None,
    reuse_port: bool = False,
    trust_forwarded_for: bool = False,
    backlog: int = 4096,
) -> CollectorServer:
    """Listen on ``host:port`` (port 0 picks a free one) on the running loop.

    The caller owns ``writer`` and ``cache`` (load the cache and start its polling first) and
    closes them after :meth:`CollectorServer.aclose`. ``reuse_port`` lets several processes
    share the port (``SO_REUSEPORT``); ``trust_forwarded_for`` takes the client IP from the last
    ``X-Forwarded-For`` entry (only behind a trusted load balancer; so does
    ``ADTRACK_TRUST_FORWARDED_FOR``). Without ``core``, one is built from ``settings``.
    """
    if core is None:
        core = build_core(settings, cache, trust_forwarded_for=trust_forwarded_for)
    http = HttpCollector(
        core,
        writer,
        limits=ConnectionLimits.from_settings(settings),
        serve_metrics=settings.metrics == "tracking",
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        http.protocol_factory,
        host,
        port,
        reuse_port=reuse_port or None,
        backlog=backlog,
    )
    for sock in server.sockets:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    http.start_ticker()
    return CollectorServer(server, http)


def _load_cache_until_ready(cache: TrackerCache) -> None:
    delay = 0.5
    while True:
        try:
            cache.load()
            return
        except Exception as exc:  # the store is not reachable yet: no answers without trackers
            log.warning("collector: cannot load trackers yet (%s); retrying in %.1fs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


async def serve_collector(
    settings: Settings,
    host: str | None,
    port: int,
    options: CollectorOptions = CollectorOptions(),
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Build everything from ``settings`` and serve until ``stop`` is set (or SIGINT/SIGTERM)."""
    engine = bootstrap.open_engine(settings)
    # This process is the collector: the loaded trackers stay frozen out of the GC's way.
    cache = bootstrap.build_tracker_cache(engine, freeze_after_load=True)
    await asyncio.to_thread(_load_cache_until_ready, cache)
    cache.start()
    writer = bootstrap.build_event_writer(settings, options.writer_id)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    try:
        collector = await start_collector(
            settings,
            host,
            port,
            writer=writer,
            cache=cache,
            reuse_port=options.reuse_port,
            trust_forwarded_for=options.trust_forwarded_for,
        )
        control: ControlServer | None = None
        try:
            if options.control_socket is not None:
                try:
                    control = await start_control_server(collector.core, options.control_socket)
                except OSError as exc:  # tracking matters more than the console's live hits
                    log.error(
                        "collector: no control channel at %s: %s", options.control_socket, exc
                    )
            # Everything loaded so far lives as long as the process: keep it out of the
            # garbage collector's full passes, which would otherwise show up as latency spikes.
            gc.collect()
            gc.freeze()
            log.info("collector listening on %s:%d", host or "*", collector.port)
            if ready is not None:
                ready.set()
            await stop.wait()
        finally:
            if control is not None:
                await control.aclose()
            await collector.aclose()
    finally:
        await writer.close()
        cache.stop()
        engine.dispose()


async def serve_collector_in_background(
    settings: Settings,
    host: str | None,
    port: int,
    options: CollectorOptions = CollectorOptions(),
    *,
    stop: asyncio.Event | None = None,
) -> asyncio.Task[None] | None:
    """:func:`serve_collector` in a task, returned as soon as the collector listens.

    None when it ended before listening (its error, if any, is raised here).
    """
    ready = asyncio.Event()
    serving = asyncio.create_task(
        serve_collector(settings, host, port, options, ready=ready, stop=stop)
    )
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if not ready.is_set():
        await serving
        return None
    return serving


def run_collector(
    settings: Settings,
    host: str | None = "0.0.0.0",
    port: int = 8001,
    options: CollectorOptions = CollectorOptions(),
) -> None:
    """Run a collector on uvloop until SIGINT/SIGTERM (blocking)."""
    uvloop.run(serve_collector(settings, host, port, options))
