"""Helpers for the scale-out tests: private PostgreSQL and NATS servers the test may stop, adtrack
processes (``adtrack collector``, ``adtrack aggregator``), a load generator that remembers which
requests were answered how, and what the reporting tables hold.

Everything started here is started by the test and stopped by it (context managers), on free
loopback ports, with data in temporary folders.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from tests.support.collector import BROWSER_UA
from tests.support.net import LOOPBACK, free_port, port_is_open, wait_for_port
from tests.support.process import stop_process
from tests.support.raw_events import archived_values
from tests.support.server import adtrack_command


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# ---- a PostgreSQL server of the test's own ------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (Debian's server binaries)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) for x in Path(p).parent.parent.name.split(".") if x.isdigit()],
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; "
            "run scripts/ensure_services.sh (installs the postgresql package)"
        )
    return Path(found[-1]).parent


class PrivatePostgres:
    """A throw-away cluster (``initdb``) on its own port, run with ``pg_ctl`` as user postgres
    (when the tests run as root), with database ``adtrack``. Stoppable and restartable."""

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="adtrack-test-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.url = f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/adtrack"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{self.log.read_text() if self.log.exists() else ''}"
            )

    def __enter__(self) -> PrivatePostgres:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        with psycopg.connect(
            host=LOOPBACK, port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE adtrack")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses={LOOPBACK} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        return port_is_open(LOOPBACK, self.port)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            if self.running:
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- a NATS server of the test's own ------------------------------------------------------------


class PrivateNats:
    """``nats-server -js`` on its own port with its own store folder; stop/start keep both.

    ``config``: lines of a nats-server configuration file to start it with (e.g.
    ``max_payload: 65536``); ``jetstream=False`` starts it without JetStream."""

    def __init__(self, config: str = "", *, jetstream: bool = True) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            raise RuntimeError("nats-server not found; run scripts/ensure_services.sh")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="adtrack-test-nats-"))
        self.url = f"nats://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.args = [self.binary, "-a", LOOPBACK, "-p", str(self.port)]
        if jetstream:
            self.args += ["-js", "-sd", str(self.dir)]
        if config:
            (self.dir / "nats.conf").write_text(config + "\n")
            self.args += ["-c", str(self.dir / "nats.conf")]

    def start(self) -> None:
        with (self.dir / "nats.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if not wait_for_port(LOOPBACK, self.port, 15):
            raise RuntimeError("nats-server did not start:\n" + self.output())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.process, sig)
        self.process = None

    def output(self) -> str:
        path = self.dir / "nats.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> PrivateNats:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- adtrack processes --------------------------------------------------------------------------


def children_of(process_id: int) -> list[int]:
    """Child processes of ``process_id`` (started from any of its threads)."""
    pids: list[int] = []
    for path in Path(f"/proc/{process_id}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in path.read_text().split()]
    return pids


class AdtrackProcess:
    """``adtrack <args>`` with ``env`` added to a clean environment; output in ``log_path``."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = list(args)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ADTRACK_")}
        self.env.update(env)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_line: str | None = None, timeout: float = 30.0) -> AdtrackProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*adtrack_command(), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: killed with its workers
            )
        if ready_line is not None and not wait_until(
            lambda: ready_line in self.output()[offset:] or not self.running, timeout
        ):
            self.kill()
            raise RuntimeError(f"adtrack {self.args} did not start:\n{self.output()}")
        if not self.running:
            raise RuntimeError(f"adtrack {self.args} exited:\n{self.output()}")
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        return children_of(self.pid)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process and everything it started."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # any worker left behind


@contextlib.contextmanager
def processes() -> Iterator[list[AdtrackProcess]]:
    """A list to put started processes in; all are killed at the end."""
    started: list[AdtrackProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()


def scaleout_env(database_url: str, nats_url: str, stream: str, data_dir: Path) -> dict[str, str]:
    return {
        "ADTRACK_DATA_DIR": str(data_dir),
        "ADTRACK_DATABASE_URL": database_url,
        "ADTRACK_EVENT_LOG": nats_url,
        "ADTRACK_NATS_STREAM": stream,
        "ADTRACK_NATS_SUBJECT": f"adtrack_test.{stream.lower()}",
    }


def start_collector(
    env: Mapping[str, str], log_dir: Path, *, port: int | None = None, workers: int = 1
) -> tuple[AdtrackProcess, int]:
    port = port or free_port()
    process = AdtrackProcess(
        ["collector", "--host", LOOPBACK, "--port", str(port), "--workers", str(workers)],
        env,
        log_dir / f"collector-{port}.log",
    )
    process.start("adtrack: collector listening on")
    return process, port


def start_aggregator(
    env: Mapping[str, str], log_dir: Path, name: str = "aggregator"
) -> AdtrackProcess:
    return AdtrackProcess(["aggregator"], env, log_dir / f"{name}.log").start(
        "adtrack: aggregator running"
    )


# ---- load ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    cachebuster: str
    status: int | None  # None: no answer (connection refused/reset)
    sent: float
    answered: float


@dataclass
class Load:
    """Impressions for tracker ``tracker`` on ``ports`` from ``connections`` keep-alive
    connections, each with a unique cachebuster; every answer is kept."""

    ports: Sequence[int]
    tracker: int
    prefix: str
    connections: int = 4
    pause: float = 0.002  # per connection between requests: a steady, modest rate
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _count: int = 0

    def send(self, count: int) -> list[Answer]:
        """Send ``count`` requests (spread over the connections) and wait for all of them."""
        before = len(self.answers)
        asyncio.run(self._run(limit=count))
        return self.answers[before:]

    def start(self) -> Load:
        """Send in the background until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(None)), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def answered_ok(self) -> set[str]:
        return {a.cachebuster for a in self.answers if a.status is not None and a.status < 400}

    def sent(self) -> set[str]:
        return {a.cachebuster for a in self.answers}

    def statuses(self, answers: Sequence[Answer] | None = None) -> Counter[int | None]:
        return Counter(a.status for a in (self.answers if answers is None else answers))

    async def _run(self, limit: int | None) -> None:
        budget = [limit]
        await asyncio.gather(
            *(
                self._connection(self.ports[i % len(self.ports)], budget)
                for i in range(self.connections)
            )
        )

    def _next(self, budget: list[int | None]) -> str | None:
        if self._stop.is_set() and budget[0] is None:
            return None
        if budget[0] is not None:
            if budget[0] <= 0:
                return None
            budget[0] -= 1
        self._count += 1
        return f"{self.prefix}-{self._count}"

    async def _connection(self, port: int, budget: list[int | None]) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (cachebuster := self._next(budget)) is not None:
            sent = time.monotonic()
            status: int | None = None
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(LOOPBACK, port)
                assert reader is not None
                writer.write(
                    f"GET /imptr?id={self.tracker}&cachebuster={cachebuster} HTTP/1.1\r\n"
                    f"Host: {LOOPBACK}:{port}\r\nUser-Agent: {BROWSER_UA}\r\n\r\n".encode()
                )
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await asyncio.wait_for(reader.readexactly(length), 15)
                if b"connection: close" in head.lower():
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError):
                if writer is not None:
                    writer.close()
                reader = writer = None
                if status is None:
                    await asyncio.sleep(0.05)  # refused or reset: try again on a new connection
            self.answers.append(Answer(cachebuster, status, sent, time.monotonic()))
            if self.pause:
                await asyncio.sleep(self.pause)
        if writer is not None:
            writer.close()


# ---- what the reports hold ----------------------------------------------------------------------


def stored_cachebusters(engine: Engine, tracker: int, raw_events_dir: Path) -> Counter[str]:
    """Raw events of ``tracker`` in the archive at ``raw_events_dir``, by cachebuster (each
    must be 1)."""
    rows = archived_values(engine, raw_events_dir, ["tracker_id", "cachebuster"])
    return Counter(str(cachebuster) for tracker_id, cachebuster in rows if tracker_id == tracker)


def reported_impressions(engine: Engine, tracker: int) -> int:
    """Impressions of ``tracker`` in the hourly rollups (what reports read)."""
    query = select(func.coalesce(func.sum(t.rollup_hourly.c.imps), 0)).where(
        t.rollup_hourly.c.tracker_id == tracker
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def wait_for_report(engine: Engine, tracker: int, expected: int, timeout: float = 30.0) -> int:
    """Wait until the rollups count ``expected`` impressions (or the time is up); the count."""
    seen = [0]

    def reached() -> bool:
        with contextlib.suppress(Exception):  # the database may still be coming back
            seen[0] = reported_impressions(engine, tracker)
        return seen[0] >= expected

    wait_until(reached, timeout, 0.2)
    return seen[0]


class Closing:
    """``with Closing(engine):`` disposes the engine at the end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Engine:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()
