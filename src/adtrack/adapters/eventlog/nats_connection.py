"""One NATS connection per event log part, made in the background and set up for the stream.

The JetStream writer (``nats_writer.py``) and reader (``nats_reader.py``) each hold a
:class:`NatsConnection`: it connects (and reconnects) forever in the background, so that while
NATS is down an append or a read fails at once instead of queueing behind a dead server, and it
ensures the stream (``nats_stream.py``) once per connection, logging each distinct set-up
problem once and reporting it as the part's ``readiness()`` reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.client import Client as NatsClient

from adtrack.adapters.eventlog.nats_stream import StreamSpec, ensure_stream
from adtrack.services.ports import EventLogUnavailable

__all__ = ["DEFAULT_CONNECT_WAIT", "NatsConnection"]

log = logging.getLogger(__name__)

DEFAULT_CONNECT_WAIT = 2.0  # how long the very first use waits for the first connection


def _coalesce_socket_writes() -> None:
    """Make the NATS client hand its buffered commands to the socket as ONE write.

    The client flushes its queue with ``writelines`` (three pieces per message); uvloop's
    ``writelines`` tries a ``send`` per piece, so a batch of 100 events cost 300 system calls
    (measured: most of an append's time). Joining first makes it one.
    """
    from nats.aio import transport

    def writelines(self: transport.TcpTransport, payload: list[bytes]) -> None:
        self.write(b"".join(payload))  # type: ignore[no-untyped-call]

    if hasattr(transport, "TcpTransport"):
        transport.TcpTransport.writelines = writelines  # type: ignore[method-assign]


_coalesce_socket_writes()


class NatsConnection:
    """One NATS connection, made in the background and re-made by the client forever.

    ``get(wait)`` returns the connected client, waiting at most ``wait`` seconds for it; the
    stream is ensured once per connection (and again when a publish finds no stream).
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        name: str,
        on_disconnected: Callable[[], Awaitable[None]] | None = None,
        on_connected: Callable[[NatsClient], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.client: NatsClient | None = None
        self.stream_ready = False
        self.stream_subjects: list[str] = []  # the stream's subjects, when it was last checked
        self._on_disconnected = on_disconnected
        self._on_connected = on_connected
        self._task: asyncio.Task[NatsClient] | None = None
        self._first_wait_until = 0.0
        self._last_error = "not connected yet"
        self._last_logged = 0.0
        self._stream_retry_at = 0.0
        # why the stream could not be set up (None: it was, or was not tried yet), and the last
        # such reason logged: each distinct reason is logged once, not on every retry
        self._stream_error: EventLogUnavailable | None = None
        self._stream_error_logged = ""
        self._closed = False
        self._lock: asyncio.Lock | None = None
        self._stream_check: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        client = self.client
        return client is not None and client.is_connected

    def problem(self) -> str | None:
        """None when connected with the stream in place, else why not. Starts connecting (or
        checking the stream after a reconnect) in the background when nothing else has, so
        that readiness does not wait for an append that a load balancer will not send."""
        if self._closed:
            return "the NATS event log is closed"
        client = self.client
        if client is None or client.is_closed:
            task = self._task
            if task is None or (client is not None and client.is_closed):
                self.client = None
                self._task = asyncio.get_running_loop().create_task(self._connect())
                self._first_wait_until = time.monotonic() + DEFAULT_CONNECT_WAIT
                return f"connecting to NATS ({self.spec.where})"
            if not task.done():
                return f"cannot reach NATS ({self.spec.where}): {self._last_error}"
            if task.cancelled() or task.exception() is not None:
                self._task = None  # the next call (or append) tries again
                return f"NATS setup failed ({self.spec.where})"
            self.client = client = task.result()
        if not client.is_connected:
            return f"not connected to NATS ({self.spec.where}): {self._last_error}; reconnecting"
        if not self.stream_ready:
            checking = self._stream_check
            if checking is None or checking.done():
                self._stream_check = asyncio.get_running_loop().create_task(
                    self._check_stream_quietly(client)
                )
            if self._stream_error is not None:
                return str(self._stream_error)
            return f"checking JetStream stream {self.spec.where}"
        return None

    async def _check_stream_quietly(self, client: NatsClient) -> None:
        with contextlib.suppress(EventLogUnavailable):
            await self._ensure_stream(client)

    async def get(self, wait: float = DEFAULT_CONNECT_WAIT) -> NatsClient:
        client = self.client
        if client is not None and client.is_connected and self.stream_ready:
            return client
        if self._closed:
            raise EventLogUnavailable("the NATS event log is closed")
        if client is not None and client.is_closed:  # the client gave up (e.g. refused auth)
            self.client = client = None
            self._task = None
        if client is None:
            client = await self._wait_for_client(wait)
        if not client.is_connected:
            raise EventLogUnavailable(f"not connected to NATS ({self.spec.where}); reconnecting")
        if not self.stream_ready:
            await self._ensure_stream(client)
        return client

    async def _wait_for_client(self, wait: float) -> NatsClient:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._connect())
            self._first_wait_until = time.monotonic() + wait
        # Only the first uses wait (so a start-up race does not answer 503); during an outage
        # every append fails at once while the client keeps trying in the background.
        remaining = self._first_wait_until - time.monotonic()
        if remaining > 0 and not self._task.done():
            await asyncio.wait({self._task}, timeout=remaining)
        if not self._task.done():
            raise EventLogUnavailable(
                f"cannot reach NATS ({self.spec.where}): {self._last_error}; retrying"
            )
        exc = self._task.exception()
        if exc is not None:  # only setup after connecting can fail: try again next time
            self._task = None
            raise EventLogUnavailable(f"NATS setup failed ({self.spec.where}): {exc}")
        client = self._task.result()
        self.client = client
        return client

    async def _connect(self) -> NatsClient:
        client = NatsClient()
        await client.connect(
            servers=list(self.spec.servers),
            name=self.name,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # the first connect also retries until it works
            reconnect_time_wait=0.5,  # type: ignore[arg-type]
            ping_interval=5,
            max_outstanding_pings=2,
            error_cb=self._error,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )
        try:
            if self._on_connected is not None:
                await self._on_connected(client)
        except BaseException:
            await client.close()
            raise
        log.info("%s: connected to NATS (%s)", self.name, self.spec.where)
        return client

    async def _ensure_stream(self, client: NatsClient) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.stream_ready:
                return
            failed = self._stream_error
            if failed is not None and time.monotonic() < self._stream_retry_at:
                raise failed
            try:
                self.stream_subjects = await ensure_stream(client.jetstream(timeout=2.0), self.spec)
            except EventLogUnavailable as exc:
                raise self._stream_failed(exc) from None
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                raise self._stream_failed(
                    EventLogUnavailable(f"cannot set up JetStream {self.spec.where}: {exc!r}")
                ) from exc
            self.stream_ready = True
            if failed is not None:
                log.warning("%s: JetStream %s is ready now", self.name, self.spec.where)
            self._stream_error = None
            self._stream_error_logged = ""

    def _stream_failed(self, exc: EventLogUnavailable) -> EventLogUnavailable:
        self._stream_error = exc
        self._stream_retry_at = time.monotonic() + 1.0
        message = str(exc)
        if message != self._stream_error_logged:  # once per condition, not once per retry
            self._stream_error_logged = message
            log.error("%s: %s", self.name, message)
        return exc

    def _log_rarely(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_logged >= 10.0:
            self._last_logged = now
            log.warning("%s: %s", self.name, message)

    async def _error(self, exc: Exception) -> None:
        self._last_error = repr(exc)
        self._log_rarely(f"NATS error ({self.spec.where}): {exc!r}")

    async def _disconnected(self) -> None:
        if not self._closed:
            self._log_rarely(f"disconnected from NATS ({self.spec.where})")
        if self._on_disconnected is not None:
            await self._on_disconnected()

    async def _reconnected(self) -> None:
        # The stream may be gone (a new server without the old store): check again.
        self.stream_ready = False
        log.warning("%s: reconnected to NATS (%s)", self.name, self.spec.where)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        client, self.client = self.client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5.0)
