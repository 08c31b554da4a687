"""Running adtrack.

``adtrack serve``: :func:`serve` migrates the database, creates the first admin on an empty
  database, and runs the API/console and the scheduled reports in this process, the collector
  on the tracking port in ``workers`` processes of its own and the aggregator (with the
  raw-event retention purge) in one more (or, with ``single_process``, all of it in this
  process's event loop) until it is told to stop (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
import uvloop
from sqlalchemy import Engine

from adtrack import bootstrap
from adtrack.adapters.private_files import make_private_dir
from adtrack.aggregator.process import AggregatorProcess, aggregate
from adtrack.bootstrap import Services
from adtrack.collector.asgi import TrackingASGIApp
from adtrack.collector.control import CollectorChannels
from adtrack.collector.listener import build_core, start_collector
from adtrack.collector.pool import CollectorPool
from adtrack.config import Settings
from adtrack.reporting.saved_reports import deliver_scheduled_reports
from adtrack.runtime.collectors import check_settings_country_database
from adtrack.services.users import FirstAdmin
from adtrack.supervisor import ChildStartError
from adtrack.web.app import create_app
from adtrack.web.bounded_http import bounded_protocol

__all__ = ["DEFAULT_ADMIN_EMAIL", "ensure_first_admin", "listen", "serve"]

DEFAULT_ADMIN_EMAIL = "admin@example.com"

log = logging.getLogger(__name__)


def ensure_first_admin(engine: Engine, email: str | None = None) -> FirstAdmin | None:
    """Create and announce the admin of a database with no users (and do nothing otherwise).

    The three lines are printed once, ever: later starts find a user and stay quiet.
    """
    email = email or os.environ.get("ADTRACK_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    first = bootstrap.build_users(engine).bootstrap_admin(email)
    if first is not None:
        print(f"adtrack: first run - created admin user {first.user.email}")
        print(f"adtrack: admin password: {first.password}")
        print(f"adtrack: admin token: {first.token}", flush=True)
    return first


def serve(
    settings: Settings,
    host: str,
    port: int,
    tracking_port: int,
    workers: int = 1,
    *,
    single_process: bool = False,
) -> None:
    """Migrate, bootstrap the first admin, then serve the API on ``host:port`` until stopped.

    ``tracking_port`` is where the collector (the fast tracking listener) listens: in
    ``workers`` collector processes sharing the port (``SO_REUSEPORT``; they read their
    settings from the environment), so that nothing the API does (sign-in hashing, reports,
    exports) can delay a pixel. The aggregator runs in a process of its own too, at a lower
    CPU priority, so that neither the API's loop nor a pixel waits on it. With
    ``single_process``, all of it runs in this process's event loop instead (one process for
    the smallest hosts; ``workers`` must then be 1).
    The port is taken before the first-run lines are printed, so a start that cannot listen
    does not use up the only printing of the admin's password and token.
    """
    if single_process and workers > 1:
        print(
            "adtrack: --single-process runs one collector in the API process; "
            "--workers needs collector processes of their own",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2)
    check_settings_country_database(settings)
    make_private_dir(settings.data_dir, tighten=True)
    bootstrap.migrate(settings)
    try:
        api_socket = listen(host, port)
    except OSError as exc:
        print(f"adtrack: cannot listen on {host}:{port}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    services = bootstrap.bootstrap(settings)
    try:
        ensure_first_admin(services.engine)
        stopped_by = uvloop.run(
            _serve(services, api_socket, host, tracking_port, workers, single_process)
        )
    except ChildStartError as exc:
        print(f"adtrack: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    finally:
        services.close()
        api_socket.close()
    # Everything is stopped: end as the signal that stopped us would have (what uvicorn does).
    for signum in reversed(stopped_by):
        signal.raise_signal(signum)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


async def _serve(
    services: Services,
    api_socket: socket.socket,
    host: str,
    tracking_port: int,
    workers: int = 1,
    single_process: bool = False,
) -> list[int]:
    """Everything of one box: the collector on ``tracking_port`` (a pool of ``workers``
    processes, or this event loop with ``single_process``), the same tracking core mounted on
    the API port, the aggregator (a process of its own, or this event loop with
    ``single_process``), and the API/console. Returns the signals that stopped it."""
    settings, engine = services.settings, services.engine
    cache = bootstrap.build_tracker_cache(engine)
    await asyncio.to_thread(cache.load)
    cache.start()
    writer = bootstrap.build_event_writer(settings)
    # (the tracking paths of the main port; ADTRACK_TRUST_FORWARDED_FOR applies to them too)
    core = build_core(settings, cache)
    stop = asyncio.Event()
    background: list[asyncio.Task[None]] = []
    collector = None
    pool: CollectorPool | None = None
    aggregator: AggregatorProcess | None = None
    channels: CollectorChannels | None = None
    control_dir: Path | None = None
    periodic: list[asyncio.Task[None]] = []
    try:
        if single_process:
            collector = await start_collector(
                settings, host, tracking_port, writer=writer, cache=cache, core=core
            )
            bound_tracking_port = collector.port
            background.append(asyncio.create_task(aggregate(settings, engine, stop)))
        else:
            control_dir = _control_directory(settings)
            # Writer ids unique to this server process: workers of a previous run that are
            # still shutting down keep theirs until they are gone.
            pool = CollectorPool(
                host,
                tracking_port,
                workers,
                writer_prefix=f"w{os.getpid()}-",
                trust_forwarded_for=settings.trust_forwarded_for,
                control_dir=control_dir,
            )
            aggregator = AggregatorProcess()
            # Both start at once (each waits for its processes to come up); both have finished
            # starting before a failure of either stops them.
            started = await asyncio.gather(
                asyncio.to_thread(pool.start),
                asyncio.to_thread(aggregator.start),
                return_exceptions=True,
            )
            for outcome in started:
                if isinstance(outcome, BaseException):
                    raise outcome
            bound_tracking_port = pool.port
            channels = CollectorChannels(pool.control_sockets)
        periodic = _housekeeping(services)
        app = create_app(
            services,
            tracking=TrackingASGIApp(core, writer),
            collectors=channels,
        )
        config = uvicorn.Config(
            app,
            # Access logs would go to stdout, which callers may read for the lines above and
            # then stop draining; errors still reach stderr.
            access_log=False,
            log_level="info",
            # The client is the connection's peer: uvicorn would otherwise take it from
            # X-Forwarded-For sent from 127.0.0.1. The tracking paths take it from there only
            # with ADTRACK_TRUST_FORWARDED_FOR; sign-in never (docs/limits.md, "Sign-in").
            proxy_headers=False,
            http=bounded_protocol(settings),
            timeout_keep_alive=settings.keepalive_timeout_seconds,  # type: ignore[arg-type]
        )
        port = api_socket.getsockname()[1]
        server = _AnnouncingServer(
            config,
            f"adtrack: listening on http://{host}:{port} "
            f"(tracking on http://{host}:{bound_tracking_port})",
        )
        await server.serve(sockets=[api_socket])
        return server.stopped_by
    finally:
        # Answer what the collector still holds (after its events are stored), then let the
        # aggregator finish its batch before the writer and the cache go away.
        if collector is not None:
            await collector.aclose()
        # Both at once, within one stop timeout: what the collectors still write stays in the
        # log for the next start's aggregator.
        await asyncio.gather(
            *(asyncio.to_thread(part.stop) for part in (pool, aggregator) if part is not None)
        )
        if control_dir is not None and control_dir.name.startswith(_TEMPORARY_CONTROL_PREFIX):
            shutil.rmtree(control_dir, ignore_errors=True)
        stop.set()
        for job in periodic:
            job.cancel()
        for job in (*background, *periodic):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await job
        await writer.close()
        cache.stop()


# A Unix-domain socket path holds at most 107 bytes; the sockets are named after the workers'
# writer ids, "w<server pid>-<n>.sock".
_MAX_CONTROL_DIR_LENGTH = 107 - len("/w4194304-999.sock")
_TEMPORARY_CONTROL_PREFIX = "adtrack-control-"


def _control_directory(settings: Settings) -> Path:
    """A directory only this user can enter, for the collectors' control sockets:
    ``<data dir>/control``, or a fresh temporary one when that path is too long for a socket.
    Sockets left by servers that are gone (``kill -9``) are removed."""
    directory = settings.data_dir / "control"
    if len(os.fsencode(directory)) > _MAX_CONTROL_DIR_LENGTH:
        return Path(tempfile.mkdtemp(prefix=_TEMPORARY_CONTROL_PREFIX))  # made 0700
    make_private_dir(directory, tighten=True)
    for leftover in directory.glob("w*-*.sock"):
        server_pid = leftover.name[1:].split("-", 1)[0]
        if server_pid.isdigit() and not _process_exists(int(server_pid)):
            leftover.unlink(missing_ok=True)
    return directory


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, printing ``line`` as soon as it has started: before it can answer a
    request (``/healthz``), so whoever waits for the server to answer also finds the line.

    uvicorn raises the signals that stopped it again as soon as it has shut down, which would
    end this process before it stops its collector and aggregator processes: they are kept in
    ``stopped_by`` instead, for :func:`serve` to raise once everything is stopped.
    """

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self._line = line
        self.stopped_by: list[int] = []

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self.stopped_by.extend(self._captured_signals)
                self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._line, flush=True)


def _housekeeping(services: Services) -> list[asyncio.Task[None]]:
    """The periodic jobs of the API process: send scheduled reports. (The raw-event retention
    purge belongs to the aggregator.)"""
    tasks: list[asyncio.Task[None]] = []
    if services.mailer is not None:
        tasks.append(asyncio.create_task(deliver_scheduled_reports(services.saved_reports)))
    return tasks
