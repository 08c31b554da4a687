"""The JetStream event log's writer: each append one acknowledged message on a partition.

Collectors write through :class:`NatsEventLogWriter` (chosen with ``ADTRACK_EVENT_LOG=nats://...``,
see ``docs/deploy.md``); the stream, its subjects and partitions are in ``nats_stream.py``,
aggregators read with ``nats_reader.py``.

``append(records)`` publishes the records of one append (one collector loop iteration) as ONE
message on one partition subject, round robin per append (several messages when they exceed
``ADTRACK_NATS_MAX_MESSAGE_BYTES`` or the server's ``max_payload``), in the framing of
``nats_format.py``, with a ``Nats-Msg-Id`` derived from the batch (JetStream drops a second copy
of the same batch within the stream's duplicate window, whichever partition it went to), then
waits until JetStream has acknowledged every message. A JetStream ack means the message is
stored by the stream (file storage; with replicas, by a quorum of them), so the collector may
answer. Anything else — not connected, a refusal, a missing ack after ``ack_timeout``, the
connection dropping while acks are outstanding — raises :class:`EventLogUnavailable` and the
collector answers 503. The connection is (re)made in the background, forever
(``nats_connection.py``); while it is down, appends fail at once instead of queueing behind a
dead server.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from adtrack.adapters.eventlog.nats_connection import DEFAULT_CONNECT_WAIT, NatsConnection
from adtrack.adapters.eventlog.nats_format import encode_messages
from adtrack.adapters.eventlog.nats_stream import MIN_MESSAGE_BYTES, StreamSpec
from adtrack.config import Settings
from adtrack.services.ports import EventLogUnavailable

__all__ = ["NatsEventLogWriter", "NatsWriterStats", "open_nats_writer"]

DEFAULT_ACK_TIMEOUT = 3.0  # seconds a collector waits for JetStream before answering 503
RECENT_FAILURE_SECONDS = 5.0  # a failed append keeps a writer "not ready" this long at most
HEADER_ROOM = 1024  # of the server's max_payload, left for the message headers
_MSG_ID = "Nats-Msg-Id"
_NO_RESPONDERS = "503"


@dataclass
class NatsWriterStats:
    appends: int = 0
    messages: int = 0  # JetStream messages published (one per append unless it was split)
    records: int = 0
    failures: int = 0
    duplicates: int = 0  # acks saying JetStream already had the message id


@dataclass
class _Append:
    """One ``append`` waiting for the acks of its messages."""

    remaining: int
    future: asyncio.Future[None]
    errors: list[str] = field(default_factory=list)


class NatsEventLogWriter:
    """:class:`EventLogWriter` on JetStream (see the module docstring). One per process."""

    def __init__(
        self,
        spec: StreamSpec,
        *,
        name: str = "adtrack-collector",
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        connect_wait: float = DEFAULT_CONNECT_WAIT,
    ) -> None:
        self.spec = spec
        self.ack_timeout = ack_timeout
        self.connect_wait = connect_wait
        self.stats = NatsWriterStats()
        self._connection = NatsConnection(
            spec, name=name, on_connected=self._subscribe_acks, on_disconnected=self._fail_waiting
        )
        self._inbox = ""
        self._next_token = 0
        self._waiting: dict[int, _Append] = {}
        # Round robin over the partitions, one step per append, from a random start: every
        # partition gets an even share of every collector's events however many collectors
        # there are, so aggregators that split the partitions split the work evenly. (Choosing
        # by writer would leave partitions empty with fewer writers than partitions and load
        # aggregators by the luck of a hash.) Order across partitions does not matter: rollups
        # add up, and Nats-Msg-Id duplicates are recognised stream-wide, whatever the subject.
        self._subjects = spec.partition_subjects
        self._turn = random.randrange(len(self._subjects))
        # why the last append failed and when (cleared by one that succeeds): readiness
        self._append_failure: str | None = None
        self._append_failed_at = 0.0

    @property
    def connected(self) -> bool:
        return self._connection.connected

    def readiness(self) -> str | None:
        """None when connected with the stream in place and no append failed in the last
        ``RECENT_FAILURE_SECONDS``; else why not. (A failure is reported only that long: JetStream
        may have recovered without this writer appending anything to prove it.)"""
        problem = self._connection.problem()
        if problem is not None:
            return problem
        failure = self._append_failure
        if failure is not None:
            if time.monotonic() - self._append_failed_at < RECENT_FAILURE_SECONDS:
                return failure
            self._append_failure = None
        return None

    def _failed(self, exc: EventLogUnavailable) -> EventLogUnavailable:
        self.stats.failures += 1
        self._append_failure = str(exc)
        self._append_failed_at = time.monotonic()
        return exc

    def max_message_bytes(self, client: NatsClient) -> int:
        """The size bound of one message: the configured one, within the server's
        ``max_payload`` (less room for the headers)."""
        server_max = client.max_payload or self.spec.max_message_bytes
        return max(MIN_MESSAGE_BYTES, min(self.spec.max_message_bytes, server_max - HEADER_ROOM))

    async def append(self, records: Sequence[bytes]) -> None:
        if not records:
            return
        client = await self._connection.get(self.connect_wait)
        count = len(records)
        messages = encode_messages(records, self.max_message_bytes(client))
        pending = _Append(len(messages), asyncio.get_running_loop().create_future())
        first = self._next_token
        self._next_token += len(messages)
        waiting = self._waiting
        subjects = self._subjects
        subject = subjects[self._turn % len(subjects)]
        self._turn += 1
        inbox = self._inbox
        publish = client.publish
        try:
            for token, message in enumerate(messages, first):
                waiting[token] = pending
                await publish(
                    subject,
                    message.body,
                    reply=inbox + str(token),
                    headers={_MSG_ID: message.msg_id},
                )
            async with asyncio.timeout(self.ack_timeout):
                await pending.future
        except TimeoutError:
            raise self._failed(
                EventLogUnavailable(
                    f"JetStream acknowledged {len(messages) - pending.remaining} of "
                    f"{len(messages)} messages ({count} events) within {self.ack_timeout}s "
                    f"({self.spec.where})"
                )
            ) from None
        except EventLogUnavailable as exc:
            self._failed(exc)
            raise
        except (nats.errors.Error, OSError) as exc:
            raise self._failed(
                EventLogUnavailable(f"publishing to NATS failed ({self.spec.where}): {exc!r}")
            ) from exc
        finally:
            for token in range(first, first + len(messages)):
                waiting.pop(token, None)
            if pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # retrieved, whichever way the append ended
        self.stats.appends += 1
        self.stats.messages += len(messages)
        self.stats.records += count
        self._append_failure = None

    async def close(self) -> None:
        await self._fail_waiting()
        await self._connection.close()

    # ---- acks ----------------------------------------------------------------------------------

    async def _subscribe_acks(self, client: NatsClient) -> None:
        # One wildcard inbox for all publish acks of this connection; a token per message.
        self._inbox = client.new_inbox() + "."
        await client.subscribe(self._inbox + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        try:
            pending = self._waiting.pop(int(msg.subject[len(self._inbox) :]))
        except (KeyError, ValueError):
            return  # the append gave up already
        if pending.future.done():
            return
        data = msg.data
        headers = msg.headers
        if headers and headers.get("Status") == _NO_RESPONDERS:
            self._connection.stream_ready = False  # check (or re-create) the stream next time
            pending.future.set_exception(
                EventLogUnavailable(
                    f"no JetStream stream takes the subjects {self.spec.subject!r}.<partition>"
                )
            )
            return
        if b'"error"' in data:
            pending.future.set_exception(
                EventLogUnavailable(f"JetStream refused a batch of events: {data[:300]!r}")
            )
            return
        if b'"duplicate"' in data:
            self.stats.duplicates += 1
        pending.remaining -= 1
        if pending.remaining == 0:
            pending.future.set_result(None)

    async def _fail_waiting(self) -> None:
        """The connection dropped: acks still outstanding will not come; fail those appends now."""
        failed = {id(p): p for p in self._waiting.values()}
        self._waiting.clear()
        for pending in failed.values():
            if not pending.future.done():
                pending.future.set_exception(
                    EventLogUnavailable(f"lost the connection to NATS ({self.spec.where})")
                )


def open_nats_writer(settings: Settings, *, writer_id: str | None = None) -> NatsEventLogWriter:
    name = f"adtrack-collector-{writer_id}" if writer_id else "adtrack-collector"
    return NatsEventLogWriter(StreamSpec.from_settings(settings), name=name)
