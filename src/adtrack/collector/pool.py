"""Several collector processes sharing one port (``SO_REUSEPORT``).

``adtrack serve --workers N`` and ``adtrack collector --workers N`` run N collector processes on
one host. Each is a fresh interpreter (``python -m adtrack.collector.pool ...``) with its own
event loop, tracker cache and event-log writer (writer id ``<prefix><n>``); the kernel spreads
new connections over them. The pool:

* binds the port itself first (without listening), so a port in use fails at once with a clear
  message, and port 0 picks one free port that every worker then shares;
* runs the workers under a :class:`~adtrack.supervisor.Supervisor`: it waits until every
  worker listens, restarts one that crashes or is killed (after a pause that grows while it
  keeps failing; not one that was told to stop), and stops them with SIGTERM, then SIGKILL;
* with a ``control_dir``, gives every worker a private control channel there
  (``<writer id>.sock``; see :mod:`adtrack.collector.control`), through which the process
  that runs the pool reads live hits and metrics (:meth:`CollectorPool.control_sockets`).

Workers read their settings from the environment (``ADTRACK_*``), like every other process.
They stop by themselves when the process that started them is gone, and ignore SIGINT once
running (a Ctrl-C in a terminal reaches the whole process group; the pool stops them in order).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from adtrack.supervisor import (
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    ChildSpec,
    ChildStartError,
    Supervisor,
    signal_ready,
    stop_when_orphaned,
)

__all__ = ["CollectorPool", "PoolStartError", "main", "reserve_port"]

log = logging.getLogger(__name__)

# A worker did not come up (the port is taken, the settings are wrong...).
PoolStartError = ChildStartError


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` that never listens.

    Processes that listen on the port with ``SO_REUSEPORT`` share it; the kernel hands
    connections only to listening sockets, so this one takes none. Port 0 picks a free port
    (``getsockname()``). Raises :class:`PoolStartError` if the port cannot be used.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PoolStartError(f"cannot use {host}:{port}: {exc}") from None
    return sock


class CollectorPool:
    """N collector worker processes on ``host:port`` (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        workers: int,
        *,
        writer_prefix: str = "collector-",
        trust_forwarded_for: bool = False,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        control_dir: Path | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.host = host
        self.port = port
        self.trust_forwarded_for = trust_forwarded_for
        self.startup_timeout = startup_timeout
        self.control_dir = control_dir
        self._env = env
        self._writer_ids = [f"{writer_prefix}{i}" for i in range(1, workers + 1)]
        self._reservation: socket.socket | None = None
        self._supervisor: Supervisor | None = None

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [] if self._supervisor is None else self._supervisor.pids

    @property
    def restarts(self) -> int:
        """How many times a worker was started again after it died."""
        return 0 if self._supervisor is None else self._supervisor.restarts

    def control_sockets(self) -> list[tuple[str, Path]]:
        """``(worker number, control socket)`` of every worker (empty without ``control_dir``)."""
        if self.control_dir is None:
            return []
        return [
            (str(n), self._control_socket(writer_id))
            for n, writer_id in enumerate(self._writer_ids, start=1)
        ]

    def _control_socket(self, writer_id: str) -> Path:
        assert self.control_dir is not None
        return self.control_dir / f"{writer_id}.sock"

    # ---- life cycle ----------------------------------------------------------------------------

    def start(self) -> CollectorPool:
        """Reserve the port, start every worker and wait until all listen."""
        self._reservation = reserve_port(self.host, self.port)
        self.port = int(self._reservation.getsockname()[1])
        self._supervisor = Supervisor(
            [
                ChildSpec(
                    f"collector worker {n}",
                    self._command(writer_id),
                    ready_means=f"listening on {self.host}:{self.port}",
                )
                for n, writer_id in enumerate(self._writer_ids, start=1)
            ],
            env=self._env,
            startup_timeout=self.startup_timeout,
            thread_name="collector-pool",
        )
        try:
            self._supervisor.start()
        except BaseException:
            self._release_port()
            raise
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every worker, wait up to ``timeout`` seconds, then SIGKILL the rest."""
        if self._supervisor is not None:
            self._supervisor.stop(timeout)
        self._release_port()

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (the workers are supervised meanwhile)."""
        while not stop.wait(0.5):
            pass

    def __enter__(self) -> CollectorPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals -----------------------------------------------------------------------------

    def _release_port(self) -> None:
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None

    def _command(self, writer_id: str) -> Callable[[int], list[str]]:
        def command(ready_fd: int) -> list[str]:
            line = [
                sys.executable,
                "-m",
                "adtrack.collector.pool",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--writer-id",
                writer_id,
                "--ready-fd",
                str(ready_fd),
            ]
            if self.trust_forwarded_for:
                line.append("--trust-forwarded-for")
            if self.control_dir is not None:
                line += ["--control-socket", str(self._control_socket(writer_id))]
            return line

        return command


# ---- the worker process -------------------------------------------------------------------------


async def _run_worker(args: argparse.Namespace) -> None:
    from adtrack.collector.listener import CollectorOptions, serve_collector_in_background
    from adtrack.config import Settings

    stop = asyncio.Event()
    serving = await serve_collector_in_background(
        Settings.from_env(),
        args.host,
        args.port,
        CollectorOptions(
            args.writer_id,
            reuse_port=True,
            trust_forwarded_for=args.trust_forwarded_for,
            control_socket=Path(args.control_socket) if args.control_socket else None,
        ),
        stop=stop,
    )
    if serving is None:  # stopped before it listened
        return
    signal_ready(args.ready_fd)
    watchdog = asyncio.create_task(stop_when_orphaned(stop))
    try:
        await serving
    finally:
        stop.set()
        await watchdog


def main(argv: list[str] | None = None) -> None:
    """``python -m adtrack.collector.pool``: one worker of a pool (started by the pool)."""
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m adtrack.collector.pool")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--writer-id", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--trust-forwarded-for", action="store_true")
    parser.add_argument("--control-socket", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s %(levelname)s collector[{args.writer_id}] %(name)s: %(message)s",
    )
    logging.getLogger("adtrack").setLevel(logging.INFO)
    uvloop.run(_run_worker(args))


if __name__ == "__main__":
    main()
