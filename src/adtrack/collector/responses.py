"""What the tracking endpoints answer, pre-built.

Every answer carries ``Cache-Control: no-cache, no-store, must-revalidate``, ``Pragma: no-cache``
and an ``Expires`` in the past, so browsers and proxies never serve a cached pixel instead of
asking us (which would lose the count). The one exception is the viewability measurement script
(``/v.js``), the same bytes for every impression: cached for a year under its versioned URL.

Two renderings of the same answers: :class:`RawResponses` gives complete HTTP/1.1 byte strings
for the bare collector server (cached, rebuilt once a second for the ``Date`` header), and
:func:`asgi_parts` gives status, headers and body for the ASGI transport.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Final

from adtrack.collector.viewability import VIEW_SCRIPT

__all__ = [
    "CLICK_PAGE_HTML",
    "NO_CACHE_HEADERS",
    "PIXEL_GIF",
    "TRACKING_SCRIPT",
    "AnswerKind",
    "RawResponses",
    "asgi_parts",
]

# A 1x1 transparent GIF (43 bytes).
PIXEL_GIF: Final = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
# Answer to ``t=1``: the impression is recorded by the request itself; the script does nothing.
TRACKING_SCRIPT: Final = b"/* impression recorded */\n"
CLICK_PAGE_HTML: Final = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8">'
    b"<title>Click recorded</title></head><body><p>Your click was recorded.</p></body></html>\n"
)

NO_CACHE_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"Cache-Control", b"no-cache, no-store, must-revalidate"),
    (b"Pragma", b"no-cache"),
    (b"Expires", b"Thu, 01 Jan 1970 00:00:00 GMT"),
)


class AnswerKind:
    """The answers the collector gives (plain ints: they are dict keys on the hot path, where
    an Enum's hashing is measurably slower)."""

    PIXEL: Final = 0
    SCRIPT: Final = 1
    REDIRECT: Final = 2
    CLICK_PAGE: Final = 3
    UNAVAILABLE: Final = 4  # the event store cannot take writes: nothing was recorded
    NOT_FOUND: Final = 5
    METHOD_NOT_ALLOWED: Final = 6
    BAD_REQUEST: Final = 7
    URI_TOO_LONG: Final = 8
    HEALTHY: Final = 9
    HEADER_TOO_LARGE: Final = 10  # request line + headers over the limit
    BODY_TOO_LARGE: Final = 11  # the tracking endpoints read no body: only a small one passes
    REQUEST_TIMEOUT: Final = 12  # the request head did not arrive in time
    READY: Final = 13  # /readyz: the event log takes writes
    # a 302 whose Location carries a click token: one of a kind, so never cached
    TOKEN_REDIRECT: Final = 14
    NO_CONTENT: Final = 15  # a viewability beacon (stored, or refused and only counted)
    VIEW_SCRIPT: Final = 16  # /v.js of the current version: cached for a year
    VIEW_SCRIPT_UNVERSIONED: Final = 17  # /v.js without it: cached for five minutes
    # /sspx and /px: a conversion recorded, and its refusals naming the parameter
    CONVERSION: Final = 18
    NO_PIXEL: Final = 19
    BAD_ORDER_ID: Final = 20
    BAD_VALUE: Final = 21

    ALL: Final = tuple(range(22))
    REDIRECTS: Final = (2, 14)


_STATUS: Final[dict[int, tuple[int, bytes]]] = {
    AnswerKind.PIXEL: (200, b"OK"),
    AnswerKind.SCRIPT: (200, b"OK"),
    AnswerKind.REDIRECT: (302, b"Found"),
    AnswerKind.CLICK_PAGE: (200, b"OK"),
    AnswerKind.UNAVAILABLE: (503, b"Service Unavailable"),
    AnswerKind.NOT_FOUND: (404, b"Not Found"),
    AnswerKind.METHOD_NOT_ALLOWED: (405, b"Method Not Allowed"),
    AnswerKind.BAD_REQUEST: (400, b"Bad Request"),
    AnswerKind.URI_TOO_LONG: (414, b"URI Too Long"),
    AnswerKind.HEALTHY: (200, b"OK"),
    AnswerKind.HEADER_TOO_LARGE: (431, b"Request Header Fields Too Large"),
    AnswerKind.BODY_TOO_LARGE: (413, b"Content Too Large"),
    AnswerKind.REQUEST_TIMEOUT: (408, b"Request Timeout"),
    AnswerKind.READY: (200, b"OK"),
    AnswerKind.TOKEN_REDIRECT: (302, b"Found"),
    AnswerKind.NO_CONTENT: (204, b"No Content"),
    AnswerKind.VIEW_SCRIPT: (200, b"OK"),
    AnswerKind.VIEW_SCRIPT_UNVERSIONED: (200, b"OK"),
    AnswerKind.CONVERSION: (200, b"OK"),
    AnswerKind.NO_PIXEL: (400, b"Bad Request"),
    AnswerKind.BAD_ORDER_ID: (400, b"Bad Request"),
    AnswerKind.BAD_VALUE: (400, b"Bad Request"),
}

_TEXT = b"text/plain; charset=utf-8"
_JAVASCRIPT = b"application/javascript; charset=utf-8"
_BODY: Final[dict[int, tuple[bytes, bytes]]] = {
    AnswerKind.PIXEL: (b"image/gif", PIXEL_GIF),
    AnswerKind.SCRIPT: (_JAVASCRIPT, TRACKING_SCRIPT),
    AnswerKind.REDIRECT: (b"", b""),
    AnswerKind.CLICK_PAGE: (b"text/html; charset=utf-8", CLICK_PAGE_HTML),
    AnswerKind.UNAVAILABLE: (_TEXT, b"event store unavailable, retry later\n"),
    AnswerKind.NOT_FOUND: (_TEXT, b"not found\n"),
    AnswerKind.METHOD_NOT_ALLOWED: (_TEXT, b"method not allowed\n"),
    AnswerKind.BAD_REQUEST: (_TEXT, b"bad request\n"),
    AnswerKind.URI_TOO_LONG: (_TEXT, b"uri too long\n"),
    AnswerKind.HEALTHY: (_TEXT, b"ok\n"),
    AnswerKind.HEADER_TOO_LARGE: (_TEXT, b"request header fields too large\n"),
    AnswerKind.BODY_TOO_LARGE: (_TEXT, b"request body too large\n"),
    AnswerKind.REQUEST_TIMEOUT: (_TEXT, b"request timeout\n"),
    AnswerKind.READY: (_TEXT, b"ready\n"),
    AnswerKind.TOKEN_REDIRECT: (b"", b""),
    AnswerKind.NO_CONTENT: (b"", b""),
    AnswerKind.VIEW_SCRIPT: (_JAVASCRIPT, VIEW_SCRIPT),
    AnswerKind.VIEW_SCRIPT_UNVERSIONED: (_JAVASCRIPT, VIEW_SCRIPT),
    AnswerKind.CONVERSION: (_TEXT, b"conversion recorded\n"),
    AnswerKind.NO_PIXEL: (_TEXT, b"id or code: a conversion pixel is required\n"),
    AnswerKind.BAD_ORDER_ID: (_TEXT, b"order_id: at most 100 characters\n"),
    AnswerKind.BAD_VALUE: (
        _TEXT,
        b"value: a decimal from 0 to 999999.999999 with at most 6 decimal places\n",
    ),
}

# How long an answer may be kept: never, but for the measurement script.
_CACHING: Final[dict[int, tuple[tuple[bytes, bytes], ...]]] = {
    AnswerKind.VIEW_SCRIPT: ((b"Cache-Control", b"public, max-age=31536000, immutable"),),
    AnswerKind.VIEW_SCRIPT_UNVERSIONED: ((b"Cache-Control", b"public, max-age=300"),),
}

_EXTRA: Final[dict[int, tuple[tuple[bytes, bytes], ...]]] = {
    AnswerKind.UNAVAILABLE: ((b"Retry-After", b"1"),),
    AnswerKind.METHOD_NOT_ALLOWED: ((b"Allow", b"GET, HEAD"),),
}


def asgi_parts(
    kind: int,
    location: bytes | None = None,
    body: bytes | None = None,
    set_cookie: bytes | None = None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers (lower-case names, as ASGI wants) and body of an answer; ``body``
    replaces the kind's own (the script of a ``t=1`` impression); ``set_cookie``: a
    ``Set-Cookie`` header line to add (a conversion cookie)."""
    status = _STATUS[kind][0]
    content_type, fixed_body = _BODY[kind]
    if body is None:
        body = fixed_body
    headers = [(name.lower(), value) for name, value in _CACHING.get(kind, NO_CACHE_HEADERS)]
    headers.extend((name.lower(), value) for name, value in _EXTRA.get(kind, ()))
    if kind in AnswerKind.REDIRECTS and location is not None:
        headers.append((b"location", location))
    if set_cookie is not None:
        name, _, value = set_cookie.rstrip(b"\r\n").partition(b": ")
        headers.append((name.lower(), value))
    if content_type:
        headers.append((b"content-type", content_type))
    if kind != AnswerKind.NO_CONTENT:  # (a 204 has no Content-Length)
        headers.append((b"content-length", str(len(body)).encode()))
    return status, headers, body


# Connection handling variants for the raw server.
KEEP_ALIVE_DEFAULT: Final = 0  # HTTP/1.1 keep-alive: no header needed
KEEP_ALIVE_EXPLICIT: Final = 1  # HTTP/1.0 client asked for keep-alive
CLOSE: Final = 2

_CONNECTION_LINE = (b"", b"Connection: keep-alive\r\n", b"Connection: close\r\n")
_COMMON = b"".join(name + b": " + value + b"\r\n" for name, value in NO_CACHE_HEADERS)


def _head_without_length(kind: int) -> bytes:
    """Status line and the fixed headers but Content-Length (no Date, Connection, Location)."""
    code, reason = _STATUS[kind]
    content_type = _BODY[kind][0]
    caching = _CACHING.get(kind)
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (code, reason),
        _COMMON
        if caching is None
        else b"".join(name + b": " + value + b"\r\n" for name, value in caching),
    ]
    lines.extend(name + b": " + value + b"\r\n" for name, value in _EXTRA.get(kind, ()))
    if content_type:
        lines.append(b"Content-Type: " + content_type + b"\r\n")
    return b"".join(lines)


def _head(kind: int) -> bytes:
    """Status line and the fixed headers (no Date, Connection, Location)."""
    body = _BODY[kind][1]
    if kind == AnswerKind.NO_CONTENT:
        return _head_without_length(kind)  # a 204 has no Content-Length
    return _head_without_length(kind) + b"Content-Length: %d\r\n" % len(body)


_HEADS: Final = {kind: _head(kind) for kind in AnswerKind.ALL}
_SCRIPT_HEAD: Final = _head_without_length(AnswerKind.SCRIPT)
_CACHE_MAX = 4096  # distinct answers kept (redirect targets make them many)


class RawResponses:
    """Complete HTTP/1.1 answers as bytes, cached until the ``Date`` header changes.

    Call :meth:`tick` about once a second (the server does, from a loop timer).
    """

    __slots__ = ("_date_line", "cache", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._date_line = b""
        # (kind, head_only, connection, location) -> answer; hot paths may read it directly
        # (a miss: call get), it is replaced when the second changes
        self.cache: dict[tuple[int, bool, int, bytes | None], bytes] = {}
        self.tick()

    def tick(self, now: float | None = None) -> None:
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._second = second
            self._date_line = b"Date: " + formatdate(second, usegmt=True).encode() + b"\r\n"
            self.cache = {}

    def get(
        self,
        kind: int,
        head_only: bool = False,
        connection: int = KEEP_ALIVE_DEFAULT,
        location: bytes | None = None,
    ) -> bytes:
        """An answer as bytes; ``location`` is required for :attr:`AnswerKind.REDIRECT` (already
        checked and safe to put in a header). Cached until the next second."""
        if kind == AnswerKind.TOKEN_REDIRECT:
            # its Location is never sent again: not looked up, not kept (it would only evict)
            return self._build(kind, head_only, connection, location)
        key = (kind, head_only, connection, location)
        try:
            return self.cache[key]
        except KeyError:
            pass
        data = self._build(kind, head_only, connection, location)
        if len(self.cache) >= _CACHE_MAX:
            self.cache = {}
        self.cache[key] = data
        return data

    def _build(
        self,
        kind: int,
        head_only: bool,
        connection: int,
        location: bytes | None,
        extra: bytes = b"",
    ) -> bytes:
        if kind in AnswerKind.REDIRECTS:
            if location is None:
                raise ValueError("a redirect needs a location")
            head = (
                _HEADS[kind]
                + b"Location: "
                + location
                + b"\r\n"
                + extra
                + self._date_line
                + _CONNECTION_LINE[connection]
                + b"\r\n"
            )
        else:
            head = _HEADS[kind] + extra + self._date_line + _CONNECTION_LINE[connection] + b"\r\n"
        return head if head_only else head + _BODY[kind][1]

    def script(
        self, body: bytes, connection: int = KEEP_ALIVE_DEFAULT, extra: bytes = b""
    ) -> bytes:
        """The script answer of one ``t=1`` impression (``body`` differs for each: not cached);
        ``extra``: header lines to add (with their CRLFs)."""
        return b"".join(
            (
                _SCRIPT_HEAD,
                b"Content-Length: %d\r\n" % len(body),
                extra,
                self._date_line,
                _CONNECTION_LINE[connection],
                b"\r\n",
                body,
            )
        )

    def with_cookie(
        self,
        kind: int,
        head_only: bool,
        connection: int,
        location: bytes | None,
        body: bytes | None,
        set_cookie: bytes,
    ) -> bytes:
        """An answer that sets a cookie (``set_cookie``: its header line): one of a kind, so
        never cached. ``body``: a ``t=1`` impression's own script, or None."""
        if body is not None:
            return self.script(body, connection, set_cookie)
        return self._build(kind, head_only, connection, location, set_cookie)

    def redirect(self, location: bytes, connection: int = KEEP_ALIVE_DEFAULT) -> bytes:
        """A 302 to ``location`` (already checked and safe to put in a header)."""
        return self.get(AnswerKind.REDIRECT, False, connection, location)

    def custom(
        self,
        status: bytes,
        content_type: bytes,
        body: bytes,
        head_only: bool = False,
        connection: int = KEEP_ALIVE_DEFAULT,
    ) -> bytes:
        """Any other answer (``/metrics``), with the same fixed headers."""
        head = b"".join(
            (
                b"HTTP/1.1 " + status + b"\r\n",
                _COMMON,
                b"Content-Type: " + content_type + b"\r\n",
                b"Content-Length: %d\r\n" % len(body),
                self._date_line,
                _CONNECTION_LINE[connection],
                b"\r\n",
            )
        )
        return head if head_only else head + body
