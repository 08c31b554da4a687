"""Several collector processes sharing one port (``SO_REUSEPORT``).

``adtrack serve --workers N`` and ``adtrack collector --workers N`` run N collector processes on
one host. Each is a fresh interpreter (``python -m adtrack.collector_pool ...``) with its own
event loop, tracker cache and event-log writer (writer id ``<prefix><n>``); the kernel spreads
new connections over them. The pool:

* binds the port itself first (without listening), so a port in use fails at once with a clear
  message, and port 0 picks one free port that every worker then shares;
* waits until every worker listens (each reports through a pipe);
* restarts a worker that crashes or is killed (after a pause that grows while it keeps
  failing); a worker that exits because it was told to (SIGTERM/SIGINT, exit status 0) is not
  replaced — that is how a service manager stops the whole group;
* on :meth:`CollectorPool.stop` sends SIGTERM (workers finish their pending answers) and, after
  a timeout, SIGKILL;
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
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CollectorPool", "PoolStartError", "main", "reserve_port"]

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_READY = b"ready\n"
# Exit statuses of a worker that was told to stop (it exits 0 after SIGTERM/SIGINT).
_ASKED_TO_STOP = frozenset({0, -signal.SIGTERM, -signal.SIGINT})


class PoolStartError(RuntimeError):
    """A worker did not come up (the port is taken, the settings are wrong...)."""


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


@dataclass
class _Worker:
    index: int
    writer_id: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive quick exits
    restart_at: float = 0.0


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
        self._env = dict(os.environ if env is None else env)
        self._workers = [_Worker(i, f"{writer_prefix}{i}") for i in range(1, workers + 1)]
        self._reservation: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.process and w.process.poll() is None]

    def control_sockets(self) -> list[tuple[str, Path]]:
        """``(worker number, control socket)`` of every worker (empty without ``control_dir``)."""
        if self.control_dir is None:
            return []
        return [(str(w.index), self._control_socket(w)) for w in self._workers]

    def _control_socket(self, worker: _Worker) -> Path:
        assert self.control_dir is not None
        return self.control_dir / f"{worker.writer_id}.sock"

    # ---- life cycle ----------------------------------------------------------------------------

    def start(self) -> CollectorPool:
        """Reserve the port, start every worker and wait until all listen."""
        self._reserve_port()
        try:
            deadline = time.monotonic() + self.startup_timeout
            pending = [(worker, self._spawn(worker)) for worker in self._workers]
            for worker, ready_fd in pending:
                self._wait_ready(worker, ready_fd, deadline)
        except BaseException:
            self.stop(timeout=5.0)
            raise
        self._monitor = threading.Thread(target=self._supervise, name="collector-pool", daemon=True)
        self._monitor.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every worker, wait up to ``timeout`` seconds, then SIGKILL the rest."""
        self._stopping.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2.0)
        with self._lock:
            processes = [w.process for w in self._workers if w.process is not None]
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (the workers are supervised meanwhile)."""
        while not stop.wait(0.5):
            pass

    def __enter__(self) -> CollectorPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- internals -----------------------------------------------------------------------------

    def _reserve_port(self) -> None:
        self._reservation = reserve_port(self.host, self.port)
        self.port = int(self._reservation.getsockname()[1])

    def _command(self, worker: _Worker, ready_fd: int) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "adtrack.collector_pool",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--writer-id",
            worker.writer_id,
            "--ready-fd",
            str(ready_fd),
        ]
        if self.trust_forwarded_for:
            command.append("--trust-forwarded-for")
        if self.control_dir is not None:
            command += ["--control-socket", str(self._control_socket(worker))]
        return command

    def _spawn(self, worker: _Worker) -> int:
        """Start ``worker``; returns the read end of its readiness pipe."""
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                self._command(worker, write_fd),
                env=self._env,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        with self._lock:
            worker.process = process
            worker.started_at = time.monotonic()
        return read_fd

    def _wait_ready(self, worker: _Worker, ready_fd: int, deadline: float) -> None:
        try:
            received = b""
            while not received.endswith(_READY):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolStartError(
                        f"collector worker {worker.index} did not listen on "
                        f"{self.host}:{self.port} within {self.startup_timeout:.0f}s"
                    )
                readable, _, _ = select.select([ready_fd], [], [], min(remaining, 0.5))
                if readable:
                    chunk = os.read(ready_fd, 64)
                    if not chunk:  # the worker exited before it listened
                        code = worker.process.wait() if worker.process else None
                        raise PoolStartError(
                            f"collector worker {worker.index} exited with code {code} before "
                            f"listening on {self.host}:{self.port} (see its messages above)"
                        )
                    received += chunk
        finally:
            os.close(ready_fd)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            for worker in self._workers:
                process = worker.process
                if process is None or process.poll() is None or self._stopping.is_set():
                    continue
                if process.returncode in _ASKED_TO_STOP:
                    # stopped on purpose (e.g. systemd signalling the whole group): not a crash
                    continue
                now = time.monotonic()
                if worker.restart_at == 0.0:
                    quick = now - worker.started_at < 10.0
                    worker.failures = worker.failures + 1 if quick else 0
                    pause = min(30.0, 0.5 * 2**worker.failures) if worker.failures else 0.2
                    worker.restart_at = now + pause
                    log.warning(
                        "collector worker %d (pid %d) exited with code %s; restarting in %.1fs",
                        worker.index,
                        process.pid,
                        process.returncode,
                        pause,
                    )
                if now < worker.restart_at:
                    continue
                worker.restart_at = 0.0
                try:
                    ready_fd = self._spawn(worker)
                    self._wait_ready(worker, ready_fd, time.monotonic() + self.startup_timeout)
                    self.restarts += 1
                except (OSError, PoolStartError) as exc:
                    log.error("collector worker %d failed to restart: %s", worker.index, exc)


# ---- the worker process -------------------------------------------------------------------------


async def _run_worker(args: argparse.Namespace) -> None:
    from adtrack.collector.server import CollectorOptions, serve_collector_in_background
    from adtrack.config import Settings

    parent = os.getppid()
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
    os.write(args.ready_fd, _READY)
    os.close(args.ready_fd)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # the pool stops us (SIGTERM)
    while not serving.done():
        if os.getppid() != parent:  # the pool is gone: nobody would stop or restart us
            stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(serving), 1.0)
    await serving


def main(argv: list[str] | None = None) -> None:
    """``python -m adtrack.collector_pool``: one worker of a pool (started by the pool)."""
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m adtrack.collector_pool")
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
