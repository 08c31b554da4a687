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
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from adtrack.adapters.eventlog.nats_connection import DEFAULT_CONNECT_WAIT, NatsConnection
from adtrack.adapters.eventlog.nats_format import encode_messages
from adtrack.adapters.eventlog.nats_stream import MIN_MESSAGE_BYTES, StreamSpec
from adtrack.config import Settings
from adtrack.services.ports import EventLogUnavailable

__all__ = ["NatsEventLogWriter", "NatsWriterStats", "open_nats_writer"]

DEFAULT_ACK_TIMEOUT = Settings.nats_ack_timeout_seconds  # (ADTRACK_NATS_ACK_TIMEOUT_SECONDS)
SWEEPS_PER_TIMEOUT = 10  # how often, per ack timeout, overdue appends are looked for
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


@dataclass(eq=False)  # (compared and hashed by identity)
class _Append:
    """One ``append`` waiting for the acks of its messages until ``deadline`` (loop time)."""

    remaining: int
    future: asyncio.Future[None]
    deadline: float
    messages: int
    events: int


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
        # One timer for every append's ack deadline, not one per append: an ``asyncio.timeout``
        # per append cost a tenth of an append's CPU (measured). Appends fail at most
        # ``ack_timeout / SWEEPS_PER_TIMEOUT`` late.
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._message_bytes: tuple[NatsClient, int] | None = None  # per connection
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
        ``max_payload`` (less room for the headers). Worked out once per connection."""
        known = self._message_bytes
        if known is not None and known[0] is client:
            return known[1]
        server_max = client.max_payload or self.spec.max_message_bytes
        bound = max(MIN_MESSAGE_BYTES, min(self.spec.max_message_bytes, server_max - HEADER_ROOM))
        self._message_bytes = (client, bound)
        return bound

    async def append(self, records: Sequence[bytes]) -> None:
        if not records:
            return
        client = await self._connection.get(self.connect_wait)
        count = len(records)
        messages = encode_messages(records, self.max_message_bytes(client))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_timeout
        pending = _Append(len(messages), loop.create_future(), deadline, len(messages), count)
        if self._sweep_timer is None:
            self._sweep_timer = loop.call_later(self.ack_timeout / SWEEPS_PER_TIMEOUT, self._sweep)
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
            await pending.future
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

    def _sweep(self) -> None:
        """Fail the appends whose acks are overdue; look again later while any are waiting."""
        self._sweep_timer = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        for pending in set(self._waiting.values()):
            if pending.deadline <= now and not pending.future.done():
                pending.future.set_exception(
                    EventLogUnavailable(
                        f"JetStream acknowledged {pending.messages - pending.remaining} of "
                        f"{pending.messages} messages ({pending.events} events) within "
                        f"{self.ack_timeout}s ({self.spec.where})"
                    )
                )
        self._sweep_timer = loop.call_later(self.ack_timeout / SWEEPS_PER_TIMEOUT, self._sweep)

    async def close(self) -> None:
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
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
    return NatsEventLogWriter(
        StreamSpec.from_settings(settings), name=name, ack_timeout=settings.nats_ack_timeout_seconds
    )
