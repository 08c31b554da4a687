"""The private control channel of a collector process.

``adtrack serve`` runs its collectors in their own processes; the console still shows their live
hits and the main port may serve their metrics. Each collector process listens on a Unix-domain
socket of its own (in a directory only the server's user can enter, the socket itself mode
0600; never on a TCP port) and answers one request per connection:

* ``hits <tracker_id> <limit>\\n`` — the latest hits of a tracker, newest first, as a JSON array
  of ``[ts, verdict, media_cost_micros, ancost_used, redirect_url, user_agent, referrer,
  event_id, country, device_type]``;
* ``metrics\\n`` — the collector's Prometheus metrics (text exposition format).

Anything else is answered ``error ...`` and the connection is closed. The server side
(:func:`start_control_server`) runs on the collector's event loop; the answers are cheap (a
ring read, a metrics rendering). The client side (:func:`ask`) is blocking, for callers in
a worker thread (the console's sync endpoints).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adtrack.collector.core import TrackingCore
from adtrack.collector.hits import RecentHit

__all__ = [
    "MAX_HITS",
    "CollectorChannels",
    "ControlServer",
    "ControlError",
    "ask",
    "decode_hits",
    "encode_hits",
    "start_control_server",
]

log = logging.getLogger(__name__)

MAX_HITS = 200  # the most hits one request may ask for
MAX_REQUEST_BYTES = 256  # one command line
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a metrics page of a collector is a few KiB
REQUEST_TIMEOUT = 5.0  # seconds a client may take to send its command line


class ControlError(RuntimeError):
    """A collector's control channel did not answer (it is restarting, or gone)."""


def encode_hits(hits: list[RecentHit]) -> bytes:
    return json.dumps(
        [
            [
                h.ts,
                h.verdict,
                h.media_cost_micros,
                h.ancost_used,
                h.redirect_url,
                h.user_agent,
                h.referrer,
                h.event_id,
                h.country,
                h.device_type,
            ]
            for h in hits
        ],
        separators=(",", ":"),
    ).encode()


def decode_hits(data: bytes) -> list[RecentHit]:
    # Any: JSON from our own encode_hits above, converted field by field below.
    rows: list[list[Any]] = json.loads(data)
    return [
        RecentHit(
            int(row[0]),
            str(row[1]),
            int(row[2]),
            bool(row[3]),
            row[4],
            row[5],
            row[6],
            row[7],
            None,
            *row[8:10],  # (absent from a collector of an older version, in a rolling restart)
        )
        for row in rows
    ]


def _answer(core: TrackingCore, line: bytes) -> bytes:
    parts = line.split()
    if parts == [b"metrics"]:
        return core.metrics.render()
    if len(parts) == 3 and parts[0] == b"hits" and parts[1].isdigit() and parts[2].isdigit():
        tracker_id, limit = int(parts[1]), min(int(parts[2]), MAX_HITS)
        return encode_hits(core.hits.recent(tracker_id, limit))
    return b"error unknown command\n"


class ControlServer:
    """A listening control channel; :meth:`aclose` stops it and removes the socket file."""

    def __init__(self, server: asyncio.AbstractServer, path: Path) -> None:
        self._server = server
        self.path = path

    async def aclose(self) -> None:
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def start_control_server(core: TrackingCore, path: Path) -> ControlServer:
    """Answer control requests about ``core`` on the Unix-domain socket ``path``.

    The directory must be private already (0700); the socket is made 0600 too, so that a
    directory made by someone else's rules still leaves no way in.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            writer.write(_answer(core, line[:MAX_REQUEST_BYTES]))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a previous worker of the same slot
    server = await asyncio.start_unix_server(serve, path=str(path), limit=MAX_REQUEST_BYTES)
    os.chmod(path, 0o600)
    return ControlServer(server, path)


def ask(path: Path, command: str, timeout: float = 2.0) -> bytes:
    """Send ``command`` to the control channel at ``path``; its whole answer (blocking).

    Raises :class:`ControlError` when it cannot be reached or does not answer in time.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise ControlError(f"{path}: answer larger than {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
    except OSError as exc:
        raise ControlError(f"{path}: {exc}") from None
    answer = b"".join(chunks)
    if answer.startswith(b"error "):
        raise ControlError(f"{path}: {answer.decode(errors='replace').strip()}")
    return answer


class CollectorChannels:
    """The control channels of a group of collector processes, asked one after the other.

    ``sockets`` returns the current ``(name, socket path)`` of every collector process (a pool
    restarts workers, so it is read at each call). A process that does not answer (restarting,
    stopped) is left out of the answer and logged, never an error for the caller.
    """

    def __init__(self, sockets: Callable[[], Sequence[tuple[str, Path]]]) -> None:
        self._sockets = sockets

    def recent(self, tracker_id: int, limit: int = 20) -> list[RecentHit]:
        """The latest hits of a tracker over every collector process, newest first."""
        hits: list[RecentHit] = []
        for name, answer in self._ask_all(f"hits {int(tracker_id)} {int(limit)}"):
            try:
                hits.extend(decode_hits(answer))
            except (ValueError, TypeError, IndexError) as exc:
                log.warning("collector %s answered unreadable hits: %s", name, exc)
        hits.sort(key=lambda hit: hit.ts, reverse=True)
        return hits[:limit]

    def metrics(self) -> list[tuple[str, bytes]]:
        """Each collector process's name and Prometheus text."""
        return self._ask_all("metrics")

    def _ask_all(self, command: str) -> list[tuple[str, bytes]]:
        answers = []
        for name, path in self._sockets():
            try:
                answers.append((name, ask(path, command)))
            except (ControlError, ValueError) as exc:
                log.warning("collector %s did not answer %r: %s", name, command.split()[0], exc)
        return answers
