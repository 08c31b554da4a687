"""Child processes of ``adtrack serve`` that are kept running: the collector workers and the
aggregator.

A :class:`Supervisor` runs a fixed set of children, each a fresh interpreter started from a
command line (:class:`ChildSpec`). It:

* waits until every child says it is ready, through a pipe whose write end the child gets as
  ``--ready-fd N`` (the child calls :func:`signal_ready`);
* restarts a child that crashes or is killed, after a pause that grows while it keeps failing
  quickly; a child that exits because it was told to (SIGTERM/SIGINT, exit status 0) is not
  replaced — that is how a service manager stops the whole group;
* on :meth:`Supervisor.stop` sends SIGTERM (children finish what they hold) and, after a
  timeout, SIGKILL.

The child side: :func:`signal_ready` once it works, and :func:`stop_when_orphaned` so that it
stops by itself when the process that started it is gone (nobody would stop or restart it).
Children ignore SIGINT once running (a Ctrl-C in a terminal reaches the whole process group;
the supervisor stops them in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ChildSpec",
    "ChildStartError",
    "Supervisor",
    "signal_ready",
    "stop_when_orphaned",
]

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_READY = b"ready\n"
# Exit statuses of a child that was told to stop (it exits 0 after SIGTERM/SIGINT).
_ASKED_TO_STOP = frozenset({0, -signal.SIGTERM, -signal.SIGINT})
# A child that dies within this many seconds of its start failed "quickly": the pause before
# its next start doubles (0.5 s, 1 s, 2 s... up to _MAX_PAUSE).
_QUICK_EXIT_SECONDS = 10.0
_MAX_PAUSE = 30.0


class ChildStartError(RuntimeError):
    """A child did not come up (a port is taken, the settings are wrong...)."""


@dataclass(frozen=True)
class ChildSpec:
    """One supervised child: ``name`` for messages, and its command line given the number of
    the file descriptor it reports readiness on."""

    name: str
    command: Callable[[int], list[str]]
    # What being ready means, for the error messages ("listening on host:port").
    ready_means: str = "running"


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive quick exits
    restart_at: float = 0.0


class Supervisor:
    """Runs ``children`` and keeps them running (see the module docstring)."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        thread_name: str = "supervisor",
    ) -> None:
        self.startup_timeout = startup_timeout
        self._env = dict(os.environ if env is None else env)
        self._children = [_Child(spec) for spec in children]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._thread_name = thread_name
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the running children."""
        with self._lock:
            return [c.process.pid for c in self._children if c.process and c.process.poll() is None]

    def start(self) -> Supervisor:
        """Start every child, wait until all are ready, then supervise them in a thread."""
        try:
            deadline = time.monotonic() + self.startup_timeout
            pending = [(child, self._spawn(child)) for child in self._children]
            for child, ready_fd in pending:
                self._wait_ready(child, ready_fd, deadline)
        except BaseException:
            self.stop(timeout=5.0)
            raise
        self._monitor = threading.Thread(
            target=self._supervise, name=self._thread_name, daemon=True
        )
        self._monitor.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every child, wait up to ``timeout`` seconds, then SIGKILL the rest."""
        self._stopping.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2.0)
        with self._lock:
            processes = [c.process for c in self._children if c.process is not None]
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

    # ---- internals -----------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> int:
        """Start ``child``; returns the read end of its readiness pipe."""
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                child.spec.command(write_fd),
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
            child.process = process
            child.started_at = time.monotonic()
        return read_fd

    def _wait_ready(self, child: _Child, ready_fd: int, deadline: float) -> None:
        name = child.spec.name
        try:
            received = b""
            while not received.endswith(_READY):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChildStartError(
                        f"{name} was not {child.spec.ready_means} within "
                        f"{self.startup_timeout:.0f}s"
                    )
                readable, _, _ = select.select([ready_fd], [], [], min(remaining, 0.5))
                if readable:
                    chunk = os.read(ready_fd, 64)
                    if not chunk:  # the child exited before it was ready
                        code = child.process.wait() if child.process else None
                        raise ChildStartError(
                            f"{name} exited with code {code} before {child.spec.ready_means} "
                            "(see its messages above)"
                        )
                    received += chunk
        finally:
            os.close(ready_fd)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            for child in self._children:
                process = child.process
                if process is None or process.poll() is None or self._stopping.is_set():
                    continue
                if process.returncode in _ASKED_TO_STOP:
                    # stopped on purpose (e.g. systemd signalling the whole group): not a crash
                    continue
                now = time.monotonic()
                if child.restart_at == 0.0:
                    quick = now - child.started_at < _QUICK_EXIT_SECONDS
                    child.failures = child.failures + 1 if quick else 0
                    pause = min(_MAX_PAUSE, 0.5 * 2**child.failures) if child.failures else 0.2
                    child.restart_at = now + pause
                    log.warning(
                        "%s (pid %d) exited with code %s; restarting in %.1fs",
                        child.spec.name,
                        process.pid,
                        process.returncode,
                        pause,
                    )
                if now < child.restart_at:
                    continue
                child.restart_at = 0.0
                try:
                    ready_fd = self._spawn(child)
                    self._wait_ready(child, ready_fd, time.monotonic() + self.startup_timeout)
                    self.restarts += 1
                except (OSError, ChildStartError) as exc:
                    log.error("%s failed to restart: %s", child.spec.name, exc)


# ---- the child side -----------------------------------------------------------------------------


def signal_ready(ready_fd: int) -> None:
    """Tell the supervisor this child works (once; closes ``ready_fd``)."""
    os.write(ready_fd, _READY)
    os.close(ready_fd)


async def stop_when_orphaned(stop: asyncio.Event, interval: float = 1.0) -> None:
    """Set ``stop`` once the process that started this one is gone (checked every
    ``interval`` seconds), and ignore SIGINT from now on: the supervisor stops this child
    with SIGTERM. Runs until ``stop`` is set."""
    parent = os.getppid()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, lambda: None)
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
