"""The collector's own HTTP/1.1 server: a bare ``asyncio.Protocol`` on uvloop with httptools.

No framework on the hot path. Per connection, requests are parsed by ``httptools`` and answered
strictly in order (keep-alive and pipelining safe). Event records of all requests that arrive
while the event log is busy are appended as one batch (group commit): one
``await writer.append(batch)`` at a time, then the answers of that batch are written. If the
append raises :class:`EventLogUnavailable`, each request of the batch is answered 503 — never a
pixel that would hide a lost event — and the next batch tries again (the writer recovers by
itself). Requests that record nothing (``HEAD``, rejected trackers, ``/healthz``,
``/metrics``) are answered at once unless earlier answers on the same connection are pending.

Also served on this port: ``GET /healthz`` (200 ``ok``) and ``GET /metrics`` (Prometheus).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Final, cast

import httptools

from adtrack.collector.core import Outcome, RequestView, TrackingCore
from adtrack.collector.metrics import PROMETHEUS_CONTENT_TYPE
from adtrack.collector.responses import (
    CLOSE,
    KEEP_ALIVE_DEFAULT,
    KEEP_ALIVE_EXPLICIT,
    Kind,
    RawResponses,
)
from adtrack.services.event_log import EventLogUnavailable, EventLogWriter

__all__ = ["CollectorProtocol", "EventBatcher", "HttpCollector"]

log = logging.getLogger(__name__)

MAX_URL_BYTES: Final = 16 * 1024
MAX_REQUEST_HEAD_BYTES: Final = 64 * 1024
MAX_PENDING_PER_CONNECTION: Final = 128  # pipelined answers waiting; beyond this, stop reading
IDLE_TIMEOUT_SECONDS: Final = 75

# header name (lower case) -> RequestView field
_WANTED_HEADERS: Final = {
    b"user-agent": "user_agent",
    b"referer": "referrer",
    b"purpose": "purpose",
    b"sec-purpose": "purpose",
    b"x-purpose": "purpose",
    b"x-moz": "purpose",
    b"sec-gpc": "sec_gpc",
    b"dnt": "dnt",
    b"x-forwarded-for": "forwarded_for",
}


class _Slot:
    """One answer owed on a connection, in request order."""

    __slots__ = ("data", "close")

    def __init__(self, close: bool) -> None:
        self.data: bytes | None = None
        self.close = close


class EventBatcher:
    """Group commit: collects the records of many requests, appends them with one call.

    One append is in flight at a time; records arriving meanwhile form the next batch, started
    as soon as the previous one returns. Answers are written only after their batch's append.
    """

    def __init__(self, writer: EventLogWriter, core: TrackingCore, responses: RawResponses) -> None:
        self._writer = writer
        self._core = core
        self._responses = responses
        self._records: list[bytes] = []
        self._items: list[tuple[CollectorProtocol, _Slot, Outcome, int]] = []
        self._scheduled = False
        self._flushing = False
        self._idle: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, conn: CollectorProtocol, slot: _Slot, outcome: Outcome, connection: int) -> None:
        assert outcome.record is not None
        self._records.append(outcome.record)
        self._items.append((conn, slot, outcome, connection))
        self._core.metrics.queue_depth += 1
        if not self._scheduled and not self._flushing:
            self._scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            # run after every request read in this loop iteration has been added
            self._loop.call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        if self._flushing or not self._records:
            return
        self._flushing = True
        records, items = self._records, self._items
        self._records, self._items = [], []
        assert self._loop is not None
        self._loop.create_task(self._flush(records, items))

    async def _flush(
        self,
        records: list[bytes],
        items: list[tuple[CollectorProtocol, _Slot, Outcome, int]],
    ) -> None:
        core = self._core
        metrics = core.metrics
        started = time.perf_counter()
        try:
            await self._writer.append(records)
            ok = True
        except EventLogUnavailable as exc:
            ok = False
            if metrics.store_failures == 0 or log.isEnabledFor(logging.DEBUG):
                log.warning("event log unavailable, answering 503: %s", exc)
        except Exception:
            ok = False
            log.exception("event log append failed, answering 503")
        finally:
            metrics.queue_depth -= len(records)
        metrics.store_latency.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(records))
        outcomes = [item[2] for item in items]
        responses = self._responses
        if ok:
            core.committed(outcomes)
            for conn, slot, outcome, connection in items:
                if outcome.kind is Kind.REDIRECT and outcome.location is not None:
                    slot.data = responses.redirect(outcome.location, connection)
                else:
                    slot.data = responses.get(outcome.kind, outcome.head_only, connection)
                conn.drain()
        else:
            metrics.store_failures += 1
            core.failed(outcomes)
            for conn, slot, _outcome, connection in items:
                slot.data = responses.get(Kind.UNAVAILABLE, False, connection)
                conn.drain()
        self._flushing = False
        if self._records:
            self._start()
        elif self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until nothing is pending (for a clean shutdown)."""
        while self._flushing or self._records:
            self._idle = asyncio.Event()
            if not self._flushing:
                self._start()
            await self._idle.wait()
        self._idle = None


class HttpCollector:
    """Shared state of one listening collector: core, batcher, pre-built answers."""

    def __init__(
        self,
        core: TrackingCore,
        writer: EventLogWriter,
        *,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        self.core = core
        self.responses = RawResponses()
        self.batcher = EventBatcher(writer, core, self.responses)
        self.connections: set[CollectorProtocol] = set()
        self.idle_timeout = idle_timeout
        self.clock = 0  # whole seconds since start, advanced by the ticker
        self._ticker: asyncio.TimerHandle | None = None

    def protocol_factory(self) -> CollectorProtocol:
        return CollectorProtocol(self)

    def start_ticker(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.clock += 1
            self.responses.tick()
            if self.clock % 5 == 0:
                self._close_idle()
            self._ticker = loop.call_later(1.0, tick)

        self._ticker = loop.call_later(1.0, tick)

    def stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _close_idle(self) -> None:
        limit = self.clock - self.idle_timeout
        for conn in list(self.connections):
            if conn.last_active < limit and not conn.busy:
                conn.close()

    def close_connections(self) -> None:
        for conn in list(self.connections):
            conn.close()

    def special(self, path: str, head_only: bool, connection: int) -> bytes | None:
        """Answers of the non-tracking paths served on this port (None: not one of them)."""
        if path == "/healthz":
            return self.responses.get(Kind.HEALTHY, head_only, connection)
        if path == "/metrics":
            body = self.core.metrics.render()
            return self.responses.custom(
                b"200 OK", PROMETHEUS_CONTENT_TYPE, body, head_only, connection
            )
        return None


class CollectorProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_server",
        "_core",
        "_batcher",
        "_responses",
        "_transport",
        "_parser",
        "_slots",
        "_client_ip",
        "_url",
        "_headers",
        "_head_bytes",
        "_reading_paused",
        "_writing_paused",
        "_closed",
        "_eof",
        "_done",
        "last_active",
    )

    def __init__(self, server: HttpCollector) -> None:
        self._server = server
        self._core = server.core
        self._batcher = server.batcher
        self._responses = server.responses
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._slots: deque[_Slot] = deque()
        self._client_ip: str | None = None
        self._url = b""
        self._headers: dict[str, bytes] = {}
        self._head_bytes = 0
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        self._eof = False
        self._done = False  # an answer that closes the connection is queued: read no more
        self.last_active = server.clock

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)
        peer = self._transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._client_ip = str(peer[0])
        self._server.connections.add(self)
        self._core.metrics.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        self._core.metrics.connections -= 1
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self.last_active = self._server.clock
        if self._done:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Kind.BAD_REQUEST)
        except httptools.HttpParserError:
            self._fail(Kind.BAD_REQUEST)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if len(self._slots) < MAX_PENDING_PER_CONNECTION:
            self._resume_reading()

    def eof_received(self) -> bool | None:
        # the client will send no more: answer what is pending, then close
        self._eof = True
        if not self._slots:
            return None  # the transport closes itself
        return True  # stay half-open until the pending answers are written

    # ---- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        field = _WANTED_HEADERS.get(name.lower())
        if field is not None:
            headers = self._headers
            previous = headers.get(field)
            # repeated headers (several purpose headers, multi-line X-Forwarded-For) are joined
            headers[field] = value if previous is None else previous + b"," + value

    def on_message_complete(self) -> None:
        if self._done:
            return
        parser = self._parser
        if parser.should_keep_alive():
            connection = (
                KEEP_ALIVE_DEFAULT if parser.get_http_version() == "1.1" else KEEP_ALIVE_EXPLICIT
            )
        else:
            connection = CLOSE
        url = self._url
        if len(url) > MAX_URL_BYTES:
            self._answer(self._responses.get(Kind.URI_TOO_LONG, False, CLOSE), True)
            return
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            self._answer(self._responses.get(Kind.BAD_REQUEST, False, CLOSE), True)
            return
        query_at = url.find(b"?")
        if query_at >= 0:
            raw_path, query = url[:query_at], url[query_at + 1 :]
        else:
            raw_path, query = url, b""
        if not raw_path.startswith(b"/"):  # absolute-form (via a proxy): drop scheme and host
            slash = raw_path.find(b"/", raw_path.find(b"//") + 2) if b"//" in raw_path else -1
            raw_path = raw_path[slash:] if slash >= 0 else b"/"
        path = raw_path.decode("latin-1")
        method = parser.get_method().decode("latin-1")
        headers = self._headers
        view = RequestView(
            method,
            path,
            query,
            user_agent=headers.get("user_agent"),
            referrer=headers.get("referrer"),
            purpose=headers.get("purpose"),
            sec_gpc=headers.get("sec_gpc"),
            dnt=headers.get("dnt"),
            client_ip=self._client_ip,
            forwarded_for=headers.get("forwarded_for"),
        )
        try:
            outcome = self._core.handle(view)
        except Exception:
            log.exception("tracking request failed: %r", url[:200])
            self._answer(self._responses.get(Kind.BAD_REQUEST, False, CLOSE), True)
            return
        if outcome.kind is Kind.NOT_FOUND and outcome.lookup is None:
            special = self._server.special(path, method == "HEAD", connection)
            if special is not None and method in ("GET", "HEAD"):
                self._answer(special, connection == CLOSE)
                return
        self._dispatch(view, outcome, connection)

    # ---- answering -----------------------------------------------------------------------------

    def _dispatch(self, view: RequestView, outcome: Outcome, connection: int) -> None:
        if outcome.lookup is not None:
            slot = self._reserve(connection == CLOSE)
            asyncio.get_running_loop().create_task(
                self._after_lookup(view, outcome, slot, connection)
            )
        elif outcome.record is not None:
            self._batcher.add(self, self._reserve(connection == CLOSE), outcome, connection)
        elif outcome.kind is Kind.REDIRECT and outcome.location is not None:
            self._answer(
                self._responses.redirect(outcome.location, connection), connection == CLOSE
            )
        else:
            self._answer(
                self._responses.get(outcome.kind, outcome.head_only, connection),
                connection == CLOSE,
            )

    async def _after_lookup(
        self, view: RequestView, first: Outcome, slot: _Slot, connection: int
    ) -> None:
        assert first.lookup is not None
        await self._core.cache.lookup(first.lookup)
        try:
            outcome = self._core.handle(view, allow_lookup=False)
        except Exception:
            log.exception("tracking request failed after lookup")
            slot.data, slot.close = self._responses.get(Kind.BAD_REQUEST, False, CLOSE), True
            self.drain()
            return
        if outcome.record is not None:
            self._batcher.add(self, slot, outcome, connection)
            return
        if outcome.kind is Kind.REDIRECT and outcome.location is not None:
            slot.data = self._responses.redirect(outcome.location, connection)
        else:
            slot.data = self._responses.get(outcome.kind, outcome.head_only, connection)
        self.drain()

    def _reserve(self, close: bool) -> _Slot:
        if close:
            self._done = True
        slot = _Slot(close)
        self._slots.append(slot)
        if len(self._slots) >= MAX_PENDING_PER_CONNECTION:
            self._pause_reading()
        return slot

    def _answer(self, data: bytes, close: bool) -> None:
        """An answer that is ready now: written at once unless earlier ones are pending."""
        if close:
            self._done = True
        if self._slots:
            slot = _Slot(close)
            slot.data = data
            self._slots.append(slot)
            return
        transport = self._transport
        if transport is None:
            return
        transport.write(data)
        if close:
            self._closed = True
            transport.close()

    def drain(self) -> None:
        """Write the answers at the head of the queue that are ready."""
        slots = self._slots
        transport = self._transport
        while slots and slots[0].data is not None:
            slot = slots.popleft()
            if transport is None or self._closed:
                continue
            assert slot.data is not None
            transport.write(slot.data)
            if slot.close:
                self._closed = True
                transport.close()
        if not slots and transport is not None and not self._closed:
            if self._eof:
                self._closed = True
                transport.close()
            elif not self._writing_paused:
                self._resume_reading()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    def _fail(self, kind: Kind) -> None:
        """Malformed input: answer (after anything pending) and close."""
        self._answer(self._responses.get(kind, False, CLOSE), True)

    @property
    def busy(self) -> bool:
        return bool(self._slots)

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()
