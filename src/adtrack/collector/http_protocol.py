"""The collector's own HTTP/1.1 server: a bare ``asyncio.Protocol`` on uvloop with httptools.

No framework on the hot path. Per connection, requests are parsed by ``httptools`` and answered
strictly in order (keep-alive and pipelining safe). Event records of all requests that arrive
while the event log is busy are appended as one batch (group commit): one
``await writer.append(batch)`` at a time, then the answers of that batch are written. If the
append raises :class:`EventLogUnavailable`, each request of the batch is answered 503 — never a
pixel that would hide a lost event — and the next batch tries again (the writer recovers by
itself). Requests that record nothing (``HEAD``, rejected trackers, ``/healthz``,
``/metrics``) are answered at once unless earlier answers on the same connection are pending.

Also served on this port: ``GET /v.js`` (the viewability measurement script, cached long; see
``viewability.py``), ``GET /healthz`` (liveness: 200 ``ok``), ``GET /readyz`` (readiness:
200 while the event log takes writes, else 503 with the reason) and ``GET /metrics`` (Prometheus;
only when ``ADTRACK_METRICS=tracking``).

Limits (``ConnectionLimits``, see docs/limits.md), kept off the per-request path as far as
possible: the bytes of a request (line, headers and any body) are counted in ``data_received``
on the raw chunks *before* httptools buffers them (it keeps a header value until it is complete),
and exactly in the callbacks; a request head must arrive within a deadline counted from its first
byte (from the connect for the first request); an idle keep-alive connection is closed; the open
connections are capped (the oldest idle ones make room, else a new one is refused). Deadlines are
checked by the once-a-second ticker. A client that does not read its answers stops being read
(transport write-buffer limits, ``pause_writing``).
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

import httptools

from adtrack.collector.core import (
    HEADER_FIELDS,
    REQUEST_FIELDS,
    Outcome,
    RequestView,
    TrackingCore,
)
from adtrack.collector.metrics import PROMETHEUS_CONTENT_TYPE
from adtrack.collector.responses import (
    CLOSE,
    KEEP_ALIVE_DEFAULT,
    KEEP_ALIVE_EXPLICIT,
    AnswerKind,
    RawResponses,
)
from adtrack.collector.viewability import VIEW_SCRIPT_PATH, versioned_request
from adtrack.config import Settings
from adtrack.fd_limits import DEFAULT_MAX_CONNECTIONS, connection_cap
from adtrack.services.ports import EventLogUnavailable, EventLogWriter, SynchronousEventLogWriter

__all__ = ["CollectorProtocol", "ConnectionLimits", "EventBatcher", "HttpCollector"]

log = logging.getLogger(__name__)

SYNC_BATCH_RECORDS: Final = 256  # see EventBatcher
MAX_PENDING_PER_CONNECTION: Final = 128  # pipelined answers waiting; beyond this, stop reading

# The header fields the tracking endpoints read (core.HEADER_FIELDS) in their usual spellings
# too, so that most headers need no ``lower()``, and frequent headers we ignore (None).
_KNOWN_SPELLINGS: Final[dict[bytes, str | None]] = {
    **HEADER_FIELDS,
    **{name.title(): field for name, field in HEADER_FIELDS.items()},  # User-Agent, Sec-Gpc...
    b"Sec-GPC": "sec_gpc",
    b"DNT": "dnt",
    **dict.fromkeys(
        (
            b"Host",
            b"host",
            b"Accept",
            b"accept",
            b"Accept-Encoding",
            b"accept-encoding",
            b"Accept-Language",
            b"accept-language",
            b"Connection",
            b"connection",
            b"Sec-Fetch-Dest",
            b"Sec-Fetch-Mode",
            b"Sec-Fetch-Site",
            b"sec-fetch-dest",
            b"sec-fetch-mode",
            b"sec-fetch-site",
            b"sec-ch-ua",
            b"sec-ch-ua-mobile",
            b"sec-ch-ua-platform",
            b"Cache-Control",
            b"Pragma",
        )
    ),
    # A request body is never read: these only tell a too-long body (413) from a too-long head.
    **dict.fromkeys(
        (
            b"Content-Length",
            b"content-length",
            b"Transfer-Encoding",
            b"transfer-encoding",
        ),
        "body_header",
    ),
}
_MAX_JOINED_HEADER = 8192  # repeated wanted headers are joined up to this length
_METHODS: Final = {b"GET": "GET", b"HEAD": "HEAD", b"POST": "POST"}  # (POST: beacons)
_PATHS: Final = {
    p.encode(): p
    for p in (
        "/imptr",
        "/clktrb",
        "/clktr",
        "/viewtr",
        "/sspx",
        "/px",
        VIEW_SCRIPT_PATH,
        "/healthz",
        "/readyz",
        "/metrics",
    )
}
_TEXT: Final = b"text/plain; charset=utf-8"


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits one collector listener enforces (defaults as in ``Settings``).

    ``max_head_bytes`` bounds a request's line and headers (and a body, which is never read,
    counts against the same budget); ``head_timeout`` is the time to receive a whole request
    head; ``keepalive_timeout`` closes a connection idle between requests; ``max_connections``
    caps the open connections of the process; ``write_buffer_bytes`` of answers a client has
    not taken make the connection stop reading (asyncio's ``pause_writing``; it resumes below
    a quarter of it).
    """

    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    write_buffer_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits of ``settings``; the connection cap from the fd budget (which raises this
        process's soft descriptor limit to the hard one)."""
        return cls(
            max_head_bytes=settings.max_header_bytes,
            head_timeout=settings.header_timeout_seconds,
            keepalive_timeout=settings.keepalive_timeout_seconds,
            max_connections=connection_cap(settings.max_connections),
            write_buffer_bytes=settings.write_buffer_bytes,
        )


_UNAVAILABLE: Final = AnswerKind.UNAVAILABLE
_OUTCOME_OF: Final = operator.attrgetter("outcome")


class _Slot:
    """One answer owed on a connection, in request order.

    ``data`` is what to write once it is decided; ``ok`` is the answer to give if the request's
    event is stored (copied to ``data`` by the batcher); ``close`` ends the connection after it.
    """

    __slots__ = ("data", "ok", "close", "connection", "conn", "outcome")

    def __init__(
        self,
        ok: bytes | None,
        close: bool,
        connection: int,
        conn: CollectorProtocol | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        self.data: bytes | None = None
        self.ok = ok
        self.close = close
        self.connection = connection
        self.conn = conn
        self.outcome = outcome


class EventBatcher:
    """Group commit: collects the records of many requests, appends them with one call.

    Records are gathered until the end of the event-loop iteration that read them, then appended
    as one batch. Up to ``max_in_flight`` appends may wait at once (with ``fsync=always`` the
    next batch is written while the previous one's ``fdatasync`` runs, and the writer covers
    them with one sync); records arriving while all are busy form the next batch. While an
    append waits, records keep joining the next batch for as long as every loop iteration
    brings more, and it starts when that append returns or an iteration brings none: on
    JetStream an append costs the same CPU whatever it holds, and this doubled the events per
    append (18 to 32 at 64 connections) without leaving the collector idle. Answers are
    written only after their own batch's append returned (in request order per connection).

    A writer that keeps its promise without awaiting (``writes_synchronously``: the local log
    with ``fsync=interval`` or ``never``) is written to directly at the end of the iteration, or
    as soon as ``SYNC_BATCH_RECORDS`` records are waiting. That bound only matters with hundreds
    of busy connections (the first requests of a huge iteration should not wait for the last
    ones); below it, one write per iteration is cheapest: the benchmark at 64 connections
    served 10-15 % more requests with one write per iteration than with one per 16 records.
    """

    def __init__(
        self,
        writer: EventLogWriter,
        core: TrackingCore,
        responses: RawResponses,
        max_in_flight: int = 4,
    ) -> None:
        self._writer = writer
        self._core = core
        self._responses = responses
        self._max_in_flight = max_in_flight
        self._append_now: Callable[[Sequence[bytes]], None] | None = None
        if getattr(writer, "writes_synchronously", False):
            self._append_now = cast(SynchronousEventLogWriter, writer).append_now
        self._records: list[bytes] = []
        self._slots: list[_Slot] = []
        self._scheduled = False
        self._in_flight = 0
        self._records_seen = 0  # len(self._records) when a deferred start last looked
        self._idle: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        """Records waiting for an append (not yet handed to the writer)."""
        return len(self._records)

    def add(self, slot: _Slot, record: bytes) -> None:
        """Append ``record`` in the next batch; then answer ``slot``."""
        records = self._records
        records.append(record)
        self._slots.append(slot)
        if self._append_now is not None and len(records) >= SYNC_BATCH_RECORDS:
            self._write_now()
        elif not self._scheduled and self._in_flight < self._max_in_flight:
            self._scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            # run after every request read in this loop iteration has been added
            self._loop.call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        if self._in_flight >= self._max_in_flight or not self._records:
            return
        if self._append_now is not None:
            self._write_now()
            return
        if self._in_flight and len(self._records) != self._records_seen:
            # An append is waiting for its acks and requests are still coming in: they join
            # this batch until that append returns or an iteration brings none (then the
            # collector would idle). Fewer, larger appends: each costs the same whatever it
            # holds (measured on JetStream: 80 us of CPU for 18 events).
            self._records_seen = len(self._records)
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._start)
            return
        self._in_flight += 1
        records, slots = self._records, self._slots
        self._records, self._slots, self._records_seen = [], [], 0
        assert self._loop is not None
        self._core.metrics.queue_depth += len(records)
        self._loop.create_task(self._flush(records, slots))

    def _write_now(self) -> None:
        records, slots = self._records, self._slots
        self._records, self._slots = [], []
        started = time.perf_counter()
        try:
            self._append_now(records)  # type: ignore[misc]
            ok = True
        except Exception as exc:
            ok = self._store_failed(exc)
        self._finish(ok, len(records), slots, started)
        if self._in_flight == 0 and not self._records and self._idle is not None:
            self._idle.set()

    async def _flush(self, records: list[bytes], slots: list[_Slot]) -> None:
        started = time.perf_counter()
        try:
            await self._writer.append(records)
            ok = True
        except Exception as exc:
            ok = self._store_failed(exc)
        self._core.metrics.queue_depth -= len(records)
        self._finish(ok, len(records), slots, started)
        self._in_flight -= 1
        if self._records:
            if not self._scheduled:
                self._start()
        elif self._in_flight == 0 and self._idle is not None:
            self._idle.set()

    def _store_failed(self, exc: Exception) -> bool:
        if isinstance(exc, EventLogUnavailable):
            if self._core.metrics.store_failures == 0 or log.isEnabledFor(logging.DEBUG):
                log.warning("event log unavailable, answering 503: %s", exc)
        else:
            log.error("event log append failed, answering 503", exc_info=exc)
        return False

    def _finish(self, ok: bool, count: int, slots: list[_Slot], started: float) -> None:
        """The batch's append returned: answer its requests (in order per connection)."""
        core = self._core
        metrics = core.metrics
        metrics.store_latency.observe(time.perf_counter() - started)
        metrics.batch_size.observe(count)
        outcomes: list[Outcome] = list(map(_OUTCOME_OF, slots))  # (every batched slot has one)
        if ok:
            for slot in slots:  # answers first: they are what clients wait for
                slot.data = slot.ok
                slot.conn.drain()  # type: ignore[union-attr]
            core.committed(outcomes)
        else:
            metrics.store_failures += 1
            get = self._responses.get
            for slot in slots:
                slot.data = get(_UNAVAILABLE, False, slot.connection)
                slot.conn.drain()  # type: ignore[union-attr]
            core.failed(outcomes)

    async def wait_idle(self) -> None:
        """Until nothing is pending (for a clean shutdown)."""
        while self._in_flight or self._records:
            if self._records and not self._scheduled:
                self._start()  # (a synchronous writer is done with them right here)
                if not self._in_flight and not self._records:
                    break
            self._idle = asyncio.Event()
            await self._idle.wait()
        self._idle = None


class HttpCollector:
    """Shared state of one listening collector: core, batcher, pre-built answers."""

    def __init__(
        self,
        core: TrackingCore,
        writer: EventLogWriter,
        *,
        limits: ConnectionLimits = ConnectionLimits(),
        serve_metrics: bool = True,
    ) -> None:
        self.core = core
        self.writer = writer
        self.responses = RawResponses()
        self.batcher = EventBatcher(writer, core, self.responses)
        # open connections, oldest first (a dict keeps insertion order): who makes room first
        self.connections: dict[CollectorProtocol, None] = {}
        self.limits = limits
        self.serve_metrics = serve_metrics
        self.clock = 0  # whole seconds since start, advanced by the ticker
        self._ticker: asyncio.TimerHandle | None = None
        # /metrics answers rendered in this loop iteration: a read full of pipelined scrapes
        # renders once and buffers one shared answer, not thousands
        self._metrics_answers: dict[tuple[bool, int], bytes] = {}

    def protocol_factory(self) -> CollectorProtocol:
        return CollectorProtocol(self)

    def start_ticker(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.clock += 1
            self.responses.tick()
            self.check_deadlines()
            self._ticker = loop.call_later(1.0, tick)

        self._ticker = loop.call_later(1.0, tick)

    def stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def check_deadlines(self) -> None:
        """Close connections past a deadline: a request head not received within
        ``head_timeout`` of its first byte (of the connect, for the first one), or idle between
        requests for ``keepalive_timeout``. Connections with answers pending are left alone."""
        clock = self.clock
        head_limit = clock - self.limits.head_timeout
        idle_limit = clock - self.limits.keepalive_timeout
        for conn in list(self.connections):
            if conn._closed:
                # closing, its last answers not yet taken by a client that stopped reading
                if conn.last_active < idle_limit:
                    conn.close(abort=True)
                continue
            if conn._slots:
                continue
            since = conn._head_since
            if since < 0 or conn._reading_paused:  # between requests, or we are not reading
                if conn.last_active < idle_limit:
                    conn.close()
            elif since < head_limit:
                conn.time_out()

    def make_room(self) -> bool:
        """At the connection cap: close the oldest connection that owes no answer (idle
        between requests or still sending its head). False if every one is busy."""
        for conn in self.connections:
            if conn._closed:  # closing already (its answer sent): just stop counting it
                conn.forget()
                return True
            if not conn._slots:
                self.refused("evicted_idle")
                conn.forget()
                conn.close(abort=conn._writing_paused)
                return True  # (the dict changed: iterate no further)
        return False

    def refused(self, reason: str) -> None:
        refused = self.core.metrics.refused
        refused[reason] = refused.get(reason, 0) + 1

    def close_connections(self) -> None:
        for conn in list(self.connections):
            conn.close()

    def special(
        self, path: str, head_only: bool, connection: int, query: bytes = b""
    ) -> bytes | None:
        """Answers of the non-tracking paths served on this port (None: not one of them)."""
        if path == VIEW_SCRIPT_PATH:
            kind = (
                AnswerKind.VIEW_SCRIPT
                if versioned_request(query)
                else AnswerKind.VIEW_SCRIPT_UNVERSIONED
            )
            return self.responses.get(kind, head_only, connection)
        if path == "/healthz":
            return self.responses.get(AnswerKind.HEALTHY, head_only, connection)
        if path == "/readyz":
            reason = self.writer.readiness()
            if reason is None:
                return self.responses.get(AnswerKind.READY, head_only, connection)
            body = f"not ready: {reason}\n".encode("utf-8", "replace")
            return self.responses.custom(
                b"503 Service Unavailable", _TEXT, body, head_only, connection
            )
        if path == "/metrics" and self.serve_metrics:
            answers = self._metrics_answers
            answer = answers.get((head_only, connection))
            if answer is None:
                if not answers:
                    asyncio.get_running_loop().call_soon(answers.clear)
                answer = answers[head_only, connection] = self.responses.custom(
                    b"200 OK",
                    PROMETHEUS_CONTENT_TYPE,
                    self.core.metrics.render(),
                    head_only,
                    connection,
                )
            return answer
        return None


class CollectorProtocol(asyncio.Protocol):
    """One client connection; between two requests it also is the request view the core reads
    (``method``, ``path``, ``query`` and the header fields), which saves an object per hit."""

    __slots__ = (
        "_server",
        "_core",
        "_batcher",
        "_responses",
        "_transport",
        "_parser",
        "_slots",
        "_url",
        "_max_head",
        "_head_bytes",
        "_head_size",
        "_head_since",
        "_accepted",
        "_reading_paused",
        "_writing_paused",
        "_closed",
        "_eof",
        "_done",
        "last_active",
        "body_header",
        *REQUEST_FIELDS,  # the request view (see core.RequestLike)
    )

    def __init__(self, server: HttpCollector) -> None:
        self._server = server
        self._core = server.core
        self._batcher = server.batcher
        self._responses = server.responses
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._slots: deque[_Slot] = deque()
        self._url = b""
        self._max_head = server.limits.max_head_bytes
        # raw bytes received since the last complete request (line, headers, body): counted
        # before httptools buffers them
        self._head_bytes = 0
        self._head_size = 0  # the current request's header lines, counted exactly (callbacks)
        self._head_since = server.clock  # when its head began (-1: between requests)
        self._accepted = False
        self._reading_paused = False
        self._writing_paused = False
        self._closed = False
        self._eof = False
        self._done = False  # an answer that closes the connection is queued: read no more
        self.last_active = server.clock
        self.body_header: bytes | None = None  # Content-Length / Transfer-Encoding, if sent
        self.method = "GET"
        self.path = "/"
        self.query = b""
        self.user_agent: bytes | None = None
        self.referrer: bytes | None = None
        self.purpose: bytes | None = None
        self.sec_gpc: bytes | None = None
        self.dnt: bytes | None = None
        self.client_ip: str | None = None
        self.forwarded_for: bytes | None = None
        self.cookie: bytes | None = None

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = transport = cast(asyncio.Transport, transport)
        server = self._server
        connections = server.connections
        if len(connections) >= server.limits.max_connections and not server.make_room():
            server.refused("too_many_connections")
            self._closed = True
            transport.abort()  # at once: its descriptor is what the cap protects
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.client_ip = str(peer[0])
        transport.set_write_buffer_limits(high=server.limits.write_buffer_bytes)
        connections[self] = None
        self._accepted = True
        self._core.metrics.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.forget()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        clock = self.last_active = self._server.clock
        if self._done:
            return
        if self._head_since < 0:
            self._head_since = clock  # the first byte of a new request
        # Count before parsing: httptools buffers an incomplete header value, and a huge one
        # must be refused after at most one read past the limit, not when it is complete.
        # (on_message_complete resets the count; the rest of a read that completed a request is
        # not counted — at most one read — and the callbacks check the head exactly.)
        received = self._head_bytes + len(data)
        self._head_bytes = received
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(AnswerKind.BAD_REQUEST)
        except httptools.HttpParserError:
            self._fail(AnswerKind.BAD_REQUEST)
        if received > self._max_head and self._head_bytes and not self._done:
            self._refuse_too_large()  # (no request completed in this read: it is all one head)

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

    # ---- httptools callbacks ----
    # (no on_message_begin: the per-request fields are reset after each request instead)

    def on_url(self, url: bytes) -> None:
        if self._url:
            url = self._url + url
            if len(url) > self._max_head:  # never buffer an endless URL (one byte over tells)
                url = url[: self._max_head + 1]
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        try:
            field = _KNOWN_SPELLINGS[name]
        except KeyError:
            field = HEADER_FIELDS.get(name.lower())
        if field is not None:
            previous = getattr(self, field)
            if previous is None:
                setattr(self, field, value)
            elif len(previous) < _MAX_JOINED_HEADER:
                # repeated headers (several purpose headers, X-Forwarded-For lines) are joined
                setattr(self, field, previous + b"," + value)

    def on_message_complete(self) -> None:
        if self._done:
            return
        parser = self._parser
        # keep-alive answers always say so (HTTP/1.0 clients need it, 1.1 ones don't mind)
        connection = KEEP_ALIVE_EXPLICIT if parser.should_keep_alive() else CLOSE
        url = self._url
        if len(url) + self._head_size > self._max_head:
            self._refuse_too_large()
            return
        raw_path, _, self.query = url.partition(b"?")
        path = _PATHS.get(raw_path)
        if path is None:
            if not raw_path.startswith(b"/"):  # absolute-form (via a proxy): drop scheme, host
                slash = raw_path.find(b"/", raw_path.find(b"//") + 2) if b"//" in raw_path else -1
                raw_path = raw_path[slash:] if slash >= 0 else b"/"
            path = raw_path.decode("latin-1")
        self.path = path
        raw_method = parser.get_method()
        method = self.method = _METHODS.get(raw_method) or raw_method.decode("latin-1")
        view: RequestView | None = None
        try:
            outcome = self._core.handle(self)
            if outcome.lookup is not None:
                view = RequestView.copy_of(self)  # handled again later, after a store lookup
        except Exception:
            log.exception("tracking request failed: %r", url[:200])
            self._answer(self._responses.get(AnswerKind.BAD_REQUEST, False, CLOSE), True)
            return
        finally:
            # ready for the next request on this connection
            self._url = b""
            self._head_bytes = self._head_size = 0
            self._head_since = -1
            self.body_header = None
            self.user_agent = self.referrer = self.purpose = None
            self.sec_gpc = self.dnt = self.forwarded_for = self.cookie = None
        head_only = method == "HEAD"
        record = outcome.record
        if record is not None:
            # (the common case, inlined: answer from the cache, queue the slot, batch the record)
            kind, location, body = outcome.kind, outcome.location, outcome.body
            answer: bytes | None
            if outcome.set_cookie is not None:  # (a conversion cookie: never cached)
                answer = self._responses.with_cookie(
                    kind, False, connection, location, body, outcome.set_cookie
                )
            elif body is not None:  # (a t=1 impression's own script)
                answer = self._responses.script(body, connection)
            else:
                answer = self._responses.cache.get((kind, False, connection, location))
                if answer is None:
                    answer = self._responses.get(kind, False, connection, location)
            close = connection == CLOSE
            slot = _Slot(answer, close, connection, self, outcome)
            slots = self._slots
            slots.append(slot)
            if close:
                self._done = True
            if len(slots) >= MAX_PENDING_PER_CONNECTION:
                self._pause_reading()
            self._batcher.add(slot, record)
        elif view is not None:
            slot = _Slot(None, connection == CLOSE, connection, self)
            self._reserve(slot)
            asyncio.get_running_loop().create_task(self._after_lookup(view, outcome, slot))
        elif outcome.kind == AnswerKind.NOT_FOUND and (method == "GET" or head_only):
            special = self._server.special(path, head_only, connection, self.query)
            if special is None:
                special = self._responses.get(AnswerKind.NOT_FOUND, head_only, connection)
            self._answer(special, connection == CLOSE)
        else:
            self._answer(
                self._responses.get(outcome.kind, head_only, connection, outcome.location),
                connection == CLOSE,
            )

    # ---- answering ----

    async def _after_lookup(self, view: RequestView, first: Outcome, slot: _Slot) -> None:
        assert first.lookup is not None
        found = await self._core.cache.lookup(first.lookup)
        connection = slot.connection
        try:
            outcome = self._core.handle(view, False, found)
        except Exception:
            log.exception("tracking request failed after lookup")
            slot.data, slot.close = self._responses.get(AnswerKind.BAD_REQUEST, False, CLOSE), True
            self.drain()
            return
        head_only = view.method == "HEAD"
        if outcome.set_cookie is not None:
            answer = self._responses.with_cookie(
                outcome.kind,
                head_only,
                connection,
                outcome.location,
                outcome.body,
                outcome.set_cookie,
            )
        elif outcome.body is not None:
            answer = self._responses.script(outcome.body, connection)
        else:
            answer = self._responses.get(outcome.kind, head_only, connection, outcome.location)
        if outcome.record is not None:
            slot.ok = answer
            slot.outcome = outcome
            self._batcher.add(slot, outcome.record)
            return
        slot.data = answer
        self.drain()

    def _reserve(self, slot: _Slot) -> None:
        if slot.close:
            self._done = True
        slots = self._slots
        slots.append(slot)
        if len(slots) >= MAX_PENDING_PER_CONNECTION:
            self._pause_reading()

    def _answer(self, data: bytes, close: bool) -> None:
        """An answer that is ready now: written at once unless earlier ones are pending."""
        if close:
            self._done = True
        if self._slots:
            slot = _Slot(None, close, CLOSE if close else KEEP_ALIVE_DEFAULT)
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
        while slots:
            slot = slots[0]
            data = slot.data
            if data is None:
                break
            slots.popleft()
            if transport is None or self._closed:
                continue
            transport.write(data)
            if slot.close:
                self._closed = True
                transport.close()
        if not slots and transport is not None and not self._closed:
            if self._eof:
                self._closed = True
                transport.close()
            elif self._reading_paused and not self._writing_paused:
                self._resume_reading()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    def _fail(self, kind: int) -> None:
        """Malformed input: answer (after anything pending) and close."""
        self._answer(self._responses.get(kind, False, CLOSE), True)

    def _refuse_too_large(self) -> None:
        """The request is over ``max_head_bytes``: 414 if its target alone is, 413 if headers
        within the limit announced a body, else 431; then close."""
        if len(self._url) > self._max_head:
            kind, reason = AnswerKind.URI_TOO_LONG, "uri_too_long"
        elif self.body_header is not None and len(self._url) + self._head_size <= self._max_head:
            kind, reason = AnswerKind.BODY_TOO_LARGE, "body_too_large"
        else:
            kind, reason = AnswerKind.HEADER_TOO_LARGE, "header_too_large"
        self._server.refused(reason)
        self._url = b""
        self._fail(kind)

    def time_out(self) -> None:
        """The request head did not arrive in time: 408 if part of it came, then close."""
        self._server.refused("head_timeout")
        if self._head_bytes > 0 and not self._done:
            self._fail(AnswerKind.REQUEST_TIMEOUT)
        else:
            self.close()

    def forget(self) -> None:
        """No longer count this connection as open (it is being closed)."""
        if self._accepted:
            self._accepted = False
            self._server.connections.pop(self, None)
            self._core.metrics.connections -= 1

    @property
    def busy(self) -> bool:
        return bool(self._slots)

    def close(self, abort: bool = False) -> None:
        """Close the connection; ``abort``: at once, dropping answers not yet sent (a
        ``close`` would keep the descriptor until they drain to a client that may not read)."""
        transport = self._transport
        if transport is None:
            return
        if abort:
            self._closed = True
            transport.abort()
        elif not self._closed:
            self._closed = True
            transport.close()
