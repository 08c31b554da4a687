"""The main port's HTTP/1.1 protocol: uvicorn's httptools protocol with bounds.

uvicorn's httptools protocol feeds whatever arrives to the parser, which joins a header value
piece by piece (a 64 MiB header stalls the event loop for seconds and stays in memory), waits
for a request head forever, holds any number of connections, and parses any number of
pipelined requests ahead of the one being answered. This subclass, passed as
``uvicorn.Config(http=bounded_protocol(settings))``, adds (see docs/limits.md, "Main port"):

* **head size**: the raw bytes of a request head (request line + headers, up to the blank line)
  are counted *before* the parser sees them; over ``max_header_bytes`` the request is answered
  431 (414 when the request line alone is too long), the connection is half-closed and what
  the client still sends is read and dropped for a moment (so that it can read the answer
  instead of a reset), then closed;
* **head deadline**: a connection must deliver each whole head within
  ``header_timeout_seconds`` of its first byte (a new connection: of opening); else 408 and
  closed. The time the server itself is busy with earlier requests of the connection does
  not count. An idle keep-alive connection is closed after ``keepalive_timeout_seconds``
  (uvicorn's ``timeout_keep_alive``);
* **connection cap** (``fd_limits.connection_cap(max_connections)``): a new connection over
  the cap closes the oldest connection that is not being answered (idle keep-alive, or still
  sending its head: slow clients go first); when every connection is busy, the new one is
  answered 503 and closed;
* **backpressure**: at most ``MAX_PIPELINED`` parsed requests wait behind the one being
  answered; then the connection is not read any more until answers have been written, and
  answers are not written faster than the client reads (uvicorn waits for the transport's
  buffer to drain). A client that pipelines without reading holds a bounded amount of memory,
  and is closed when it has read nothing for ``send_timeout_seconds``.

Refusals are counted in ``adtrack_http_refused_total{reason}`` (``API_REGISTRY``).
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle
from typing import Any, ClassVar

import httptools
from prometheus_client import Counter
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from adtrack.config import Settings
from adtrack.fd_limits import connection_cap
from adtrack.web.metrics import API_REGISTRY

__all__ = [
    "MAX_PIPELINED",
    "REFUSAL_REASONS",
    "REFUSED",
    "BoundedHttpToolsProtocol",
    "MainPortLimits",
    "bounded_protocol",
]

REFUSAL_REASONS = (
    "header_too_large",
    "uri_too_long",
    "head_timeout",
    "too_many_connections",
    "send_timeout",
)
REFUSED = Counter(
    "adtrack_http_refused",
    "Requests and connections the main port refused or closed, by reason.",
    ["reason"],
    registry=API_REGISTRY,
)
for _reason in REFUSAL_REASONS:
    REFUSED.labels(_reason)

MAX_PIPELINED = 8  # parsed requests waiting behind the one being answered, per connection
LINGER_SECONDS = 2.0  # reading and dropping after a refusal, so the client can read it
_BODY_PIECE = 4096  # request bodies are fed in pieces of this size (see _feed)
_HEAD_END = b"\r\n\r\n"


class MainPortLimits:
    """The bounds of one main-port server, and the connections it holds."""

    def __init__(
        self,
        max_head_bytes: int,
        head_timeout: float,
        max_connections: int,
        send_timeout: float = 60.0,
    ) -> None:
        self.max_head_bytes = max_head_bytes
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        self.send_timeout = send_timeout
        self.open = 0
        # Connections not being answered (waiting for a head, or idle), oldest first.
        self.waiting: dict[BoundedHttpToolsProtocol, None] = {}

    def close_oldest_waiting(self) -> bool:
        """Close the connection that has waited longest for a request; False if none."""
        for connection in self.waiting:
            del self.waiting[connection]
            connection.close_for_room()
            return True
        return False


class _HoldableFlowControl(FlowControl):
    """uvicorn's flow control, with a hold that keeps reading paused whatever the request
    cycles ask for (they resume reading whenever they wait for a body)."""

    held = False

    def resume_reading(self) -> None:
        if not self.held:
            super().resume_reading()


def _answer(status: int, message: str) -> bytes:
    body = message.encode()
    return (
        STATUS_LINE[status]
        + b"content-type: text/plain; charset=utf-8\r\n"
        + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        + body
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring; subclassed with its limits by :func:`bounded_protocol`."""

    limits: ClassVar[MainPortLimits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],  # Any: uvicorn's own type of it
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the parser is reading a head (or waiting for one)
        self._head_bytes = 0  # bytes of the current head fed so far
        self._head_tail = b""  # its last bytes, to find a blank line split over two reads
        self._line_seen = False  # whether the request line is complete
        self._stash = b""  # received, not yet fed (held back by the pipelining bound)
        self._head_timer: TimerHandle | None = None
        self._send_timer: TimerHandle | None = None
        self._refusing = False
        self._counted = False

    # ---- connections ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _HoldableFlowControl(transport)
        limits = self.limits
        if limits.open >= limits.max_connections and not limits.close_oldest_waiting():
            REFUSED.labels("too_many_connections").inc()
            self._refusing = True
            transport.write(_answer(503, "Too many connections; try again shortly."))
            transport.close()
            return
        limits.open += 1
        self._counted = True
        limits.waiting[self] = None
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_send_timer()
        limits = self.limits
        limits.waiting.pop(self, None)
        if self._counted:
            self._counted = False
            limits.open -= 1
        self._stash = b""
        super().connection_lost(exc)

    def close_for_room(self) -> None:
        """Closed to make room for a new connection (it was not being answered)."""
        REFUSED.labels("too_many_connections").inc()
        self._cancel_head_timer()
        self._refusing = True
        self.transport.close()

    # ---- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._refusing:
            return  # answered and closing: what still arrives is dropped
        if self._stash:
            data, self._stash = self._stash + data, b""
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Feed ``data`` to the parser one head (or one body piece) at a time, so that every
        head is measured before it is parsed and pipelining stops at its bound. Pieces are
        views of ``data``: nothing is copied but what is held back."""
        view = memoryview(data)
        pos, total = 0, len(data)
        while pos < total and not self._refusing and self.parser is not None:
            if len(self.pipeline) >= MAX_PIPELINED:
                self._stash = data[pos:]
                self._hold_reading()
                return
            if self._in_head:
                size = self._head_piece_size(data, pos)
                if size is None:
                    return
            else:
                # A body: fed in small pieces, so that a head following it in the same read
                # goes at most one piece unmeasured (the callbacks reset the count).
                size = min(total - pos, _BODY_PIECE)
            piece = view[pos : pos + size]
            pos += size
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserError:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return

    def _head_piece_size(self, data: bytes, pos: int) -> int | None:
        """How much of ``data[pos:]`` belongs to the current head (up to its blank line),
        counted; None when the head is over the limit (then it has been refused)."""
        limit = self.limits.max_head_bytes
        tail = self._head_tail
        # the blank line may have begun in the previous read
        joined = (tail + data[pos : pos + len(_HEAD_END) - 1]).find(_HEAD_END) if tail else -1
        if joined >= 0:
            size = joined + len(_HEAD_END) - len(tail)
        else:
            end = data.find(_HEAD_END, pos)
            size = len(data) - pos if end < 0 else end + len(_HEAD_END) - pos
            joined = end
        complete = joined >= 0
        if self._head_bytes + size > limit:
            room = max(0, limit - self._head_bytes)
            if self._line_seen or data.find(b"\n", pos, pos + room) >= 0:
                self._refuse(431, "header_too_large", f"Request head larger than {limit} bytes.")
            else:
                self._refuse(414, "uri_too_long", f"Request line longer than {limit} bytes.")
            return None
        if self._head_bytes == 0 and size:
            self._arm_head_timer()
        if complete:
            self._reset_head()
        else:
            self._head_bytes += size
            keep = len(_HEAD_END) - 1
            self._head_tail = (tail + data[max(pos, pos + size - keep) : pos + size])[-keep:]
            self._line_seen = self._line_seen or data.find(b"\n", pos, pos + size) >= 0
        return size

    def _reset_head(self) -> None:
        self._head_bytes = 0
        self._head_tail = b""
        self._line_seen = False

    def _hold_reading(self) -> None:
        flow = self.flow
        assert isinstance(flow, _HoldableFlowControl)
        flow.pause_reading()
        flow.held = True

    # ---- parser callbacks ------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._reset_head()
        self._cancel_head_timer()
        self.limits.waiting.pop(self, None)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._reset_head()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        flow = self.flow
        assert isinstance(flow, _HoldableFlowControl)
        if flow.held and len(self.pipeline) < MAX_PIPELINED:
            flow.held = False
            stash, self._stash = self._stash, b""
            self._feed(stash)  # may hold again
            if not flow.held:
                flow.resume_reading()
        if not self.pipeline and (self.cycle is None or self.cycle.response_complete):
            waiting = self.limits.waiting
            waiting.pop(self, None)
            waiting[self] = None  # idle again: now the youngest waiting connection

    # ---- writing ---------------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's buffer is full: the client is not reading. It has
        ``send_timeout`` to read some of it (each drain restarts the clock)."""
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.limits.send_timeout, self._send_timeout)

    def resume_writing(self) -> None:
        self._cancel_send_timer()
        super().resume_writing()

    def _cancel_send_timer(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_timeout(self) -> None:
        self._send_timer = None
        if self.transport.is_closing():
            return
        REFUSED.labels("send_timeout").inc()
        self._refusing = True
        self.limits.waiting.pop(self, None)
        self.transport.abort()  # what is buffered for it will not be read

    # ---- refusals and deadlines ------------------------------------------------------------

    def _refuse(self, status: int, reason: str, message: str) -> None:
        REFUSED.labels(reason).inc()
        self._refusing = True
        self._stash = b""
        self._cancel_head_timer()
        self.limits.waiting.pop(self, None)
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier request is still being answered: an answer now would come first.
            self.transport.close()
            return
        self.transport.write(_answer(status, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        flow = self.flow
        assert isinstance(flow, _HoldableFlowControl)
        flow.held = False
        flow.resume_reading()  # read and drop, so the client is not reset before it reads
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refusing or not self._in_head:
            return
        busy = self.pipeline or self._stash or (self.cycle and not self.cycle.response_complete)
        if busy:  # the server is answering earlier requests: not the client's delay
            self._arm_head_timer()
            return
        self._refusing = True
        self.limits.waiting.pop(self, None)
        if self._head_bytes == 0 and not self._head_tail:
            # Opened and never sent a byte (browsers pre-open connections): just closed.
            self.transport.close()
            return
        REFUSED.labels("head_timeout").inc()
        self.transport.write(_answer(408, "Request head not received in time."))
        self.transport.close()


def bounded_protocol(settings: Settings) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for one main-port server with ``settings``' limits."""
    limits = MainPortLimits(
        max_head_bytes=settings.max_header_bytes,
        head_timeout=settings.header_timeout_seconds,
        max_connections=connection_cap(settings.max_connections),
        send_timeout=settings.send_timeout_seconds,
    )
    return type("MainPortProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
