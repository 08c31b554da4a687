"""A real ``adtrack serve`` process for end-to-end tests.

:func:`start_adtrack_server` starts the installed ``adtrack`` command on free loopback ports with
a data directory of its own, waits until ``GET /healthz`` answers 200, and reads the admin
credentials that the first run of an empty database prints::

    adtrack: first run - created admin user admin@example.com
    adtrack: admin password: <password>
    adtrack: admin token: <token>

Everything the process prints (stdout and stderr) goes to a log file; :meth:`AdtrackServer.output`
returns it and every start-up failure shows it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from .net import LOOPBACK, free_port, wait_for_port

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# The collector listener comes up with the API; a little grace for it after /healthz answers.
TRACKING_PORT_GRACE = 3.0
# The first-run lines may trail /healthz slightly; how long to look for them.
FIRST_RUN_GRACE = 3.0

_FIRST_RUN_USER = re.compile(r"^adtrack: first run - created admin user (\S+)\s*$", re.MULTILINE)
_FIRST_RUN_PASSWORD = re.compile(r"^adtrack: admin password: (\S+)\s*$", re.MULTILINE)
_FIRST_RUN_TOKEN = re.compile(r"^adtrack: admin token: (\S+)\s*$", re.MULTILINE)
_PORT_TAKEN = re.compile(r"address already in use|errno 98", re.IGNORECASE)

_server_numbers = itertools.count(1)
_live_servers: set[AdtrackServer] = set()


class ServerStartError(RuntimeError):
    """The server did not become healthy; the message includes everything it printed."""


@dataclass(frozen=True)
class AdminCredentials:
    """What the first ``serve`` of an empty database prints once."""

    email: str
    password: str | None
    token: str


def adtrack_command() -> list[str]:
    """The installed ``adtrack`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("adtrack")
    if script.exists():
        return [str(script)]
    # Not installed as a script (unusual): call the Typer app the script would call.
    return [sys.executable, "-c", "import sys; from adtrack.cli.main import app; sys.exit(app())"]


def parse_admin_credentials(output: str) -> AdminCredentials | None:
    """The first-run admin credentials in ``output``, or None when it has no token line."""
    token = _FIRST_RUN_TOKEN.search(output)
    if token is None:
        return None
    user = _FIRST_RUN_USER.search(output)
    password = _FIRST_RUN_PASSWORD.search(output)
    return AdminCredentials(
        email=user.group(1) if user else "admin@example.com",
        password=password.group(1) if password else None,
        token=token.group(1),
    )


class AdtrackServer:
    """One ``adtrack serve`` process (restartable on the same ports and data directory)."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        data_dir: Path | None = None,
        port: int | None = None,
        tracking_port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.host = LOOPBACK
        self.workdir = workdir
        self.data_dir = data_dir if data_dir is not None else workdir / "data"
        self.log_path = workdir / "output.log"
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self._ports_chosen_by_caller = port is not None or tracking_port is not None
        self.port = port if port is not None else free_port()
        self.tracking_port = tracking_port if tracking_port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.credentials: AdminCredentials | None = None
        self.tracking_ready = False

    # --- addresses and credentials -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API and console: ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    @property
    def tracking_url(self) -> str:
        """The collector (``/imptr``, ``/clktrb``): ``http://127.0.0.1:<tracking port>``."""
        return f"http://{self.host}:{self.tracking_port}"

    @property
    def token(self) -> str:
        """The admin API token printed on the first run (fails loudly when there was none)."""
        if self.credentials is None:
            raise AssertionError(
                "the server printed no 'adtrack: admin token: ...' line "
                "(not the first run of this database?)\n" + self.output()
            )
        return self.credentials.token

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, *, token: str | None = None, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client on :attr:`base_url`, authenticated as the admin (or with ``token``)."""
        bearer = token if token is not None else self.token
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=timeout,
        )

    # --- life cycle ----------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """Everything the server printed so far, over all its starts."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> AdtrackServer:
        """Start the process and wait until it is healthy (retrying on a port someone took)."""
        if self.is_running:
            raise RuntimeError("server already running")
        first_start = self.credentials is None
        for attempt in itertools.count(1):
            log_offset = self._log_size()
            self._spawn()
            try:
                self._wait_healthy(log_offset)
                break
            except ServerStartError:
                port_taken = _PORT_TAKEN.search(self._output_since(log_offset)) is not None
                if port_taken and not self._ports_chosen_by_caller and attempt < 3:
                    self.port, self.tracking_port = free_port(), free_port()
                    continue
                raise
        if first_start:
            self._read_credentials()
        self.tracking_ready = wait_for_port(self.host, self.tracking_port, TRACKING_PORT_GRACE)
        return self

    def wait_for_tracking(self, timeout: float = 10.0) -> None:
        """Wait until the tracking port accepts connections; fail with the server's output."""
        self.tracking_ready = wait_for_port(self.host, self.tracking_port, timeout)
        if not self.tracking_ready:
            raise AssertionError(
                f"nothing listens on the tracking port {self.tracking_port} after {timeout}s\n"
                + self.output()
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop gracefully (SIGTERM), SIGKILL after ``timeout`` s; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if self not in _live_servers:  # already stopped and cleaned up
            return process.poll()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                process.wait()
        self._kill_group()  # any child processes it left behind
        _live_servers.discard(self)
        return process.returncode

    def kill9(self) -> int | None:
        """Crash the server: SIGKILL to its whole process group, no chance to clean up."""
        process = self.process
        if process is None:
            return None
        if self not in _live_servers:  # already stopped and cleaned up
            return process.poll()
        self._kill_group()
        process.wait()
        _live_servers.discard(self)
        return process.returncode

    def restart(self) -> AdtrackServer:
        """Stop (if running) and start again with the same ports, data directory and settings."""
        if self.is_running:
            self.stop()
        return self.start()

    def __enter__(self) -> AdtrackServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals -----------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        # The developer's own ADTRACK_* settings must not leak into the server under test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADTRACK_")}
        env["ADTRACK_DATA_DIR"] = str(self.data_dir)
        env["PYTHONUNBUFFERED"] = "1"  # so the log shows the first-run lines at once
        env.update(self.extra_env)
        return env

    def _command(self) -> list[str]:
        return [
            *adtrack_command(),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--tracking-port",
            str(self.tracking_port),
            *self.extra_args,
        ]

    def _spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- $ {' '.join(self._command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so no worker outlives a test
            )
        _live_servers.add(self)

    def _wait_healthy(self, log_offset: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/healthz"
        last_problem = "no answer yet"
        while True:
            code = self.process.poll()
            if code is not None:
                self._kill_group()  # children it may have started
                _live_servers.discard(self)
                raise ServerStartError(
                    f"adtrack serve exited with code {code} before {url} answered 200.\n"
                    f"--- server output ---\n{self._output_since(log_offset)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
                    last_problem = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_problem = str(exc)
            if time.monotonic() >= deadline:
                self._kill_group()
                self.process.wait()
                _live_servers.discard(self)
                raise ServerStartError(
                    f"{url} did not answer 200 within {self.startup_timeout}s "
                    f"(last: {last_problem}).\n"
                    f"--- server output ---\n{self._output_since(log_offset)}"
                )
            time.sleep(0.1)

    def _read_credentials(self) -> None:
        deadline = time.monotonic() + FIRST_RUN_GRACE
        while True:
            self.credentials = parse_admin_credentials(self.output())
            if self.credentials is not None or time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def _kill_group(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _output_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def start_adtrack_server(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    *,
    data_dir: Path | None = None,
    port: int | None = None,
    tracking_port: int | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> AdtrackServer:
    """Start ``adtrack serve`` under ``tmp_path`` and return it once ``/healthz`` answers 200.

    Each call gets its own folder ``tmp_path/adtrack-server-<n>`` holding the data directory
    (unless ``data_dir`` is given) and ``output.log``. ``env`` adds or overrides environment
    variables (e.g. ``ADTRACK_DATABASE_URL``); ``extra_args`` go after the ``serve`` options.
    The caller stops it (``stop()``, ``with``, or the ``adtrack_server_factory`` fixture, which
    does it for you); any server still running when the test session ends is killed.
    """
    workdir = tmp_path / f"adtrack-server-{next(_server_numbers)}"
    server = AdtrackServer(
        workdir,
        env=env,
        extra_args=extra_args,
        data_dir=data_dir,
        port=port,
        tracking_port=tracking_port,
        startup_timeout=startup_timeout,
    )
    return server.start()


def stop_all_servers() -> None:
    """Kill every server this process started that is still running (end-of-session safety net)."""
    for server in list(_live_servers):
        server.kill9()


atexit.register(stop_all_servers)
