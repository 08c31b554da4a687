"""The JetStream pull consumers through which the reader (``nats_reader.py``) reads partitions.

One ephemeral pull consumer per partition read, with a filter subject, delivery from the
position + 1 (``by_start_sequence``), in-memory state and no acks (``AckPolicy.NONE``): the
position lives in SQL, so JetStream need not remember anything, and a consumer that goes missing
(server restart, idle too long) is simply made again from the position. Pulls ask JetStream to
push many messages per request and are sent to all partitions at once, so one read costs about
one round trip however many partitions it covers. (Direct gets would need a request per message
on this server version — no batch get before 2.11 — and the stream's ``allow_direct``.) Rewinding
makes new consumers; the old ones are deleted, and their late deliveries, which arrive on a
subject naming an older generation, are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api

from adtrack.adapters.eventlog.nats_connection import NatsConnection
from adtrack.adapters.eventlog.nats_stream import StreamSpec
from adtrack.services.ports import EventLogUnavailable

if TYPE_CHECKING:  # the reader's counters, which its consumers add to
    from adtrack.adapters.eventlog.nats_reader import NatsReaderStats

__all__ = ["Partition", "PartitionConsumers", "stream_sequence"]

log = logging.getLogger(__name__)

CONSUMER_IDLE_SECONDS = 300.0  # JetStream deletes a partition consumer nobody pulled from
ANSWER_GRACE_SECONDS = 1.0  # beyond a pull's wait: no answer by then, the consumer is gone
_NO_RESPONDERS = "503"


@dataclass(eq=False)
class Partition:
    """One partition of the stream as one reader reads it: its position and its consumer."""

    index: int  # in the reader's partition list (and in its consumers' names)
    subject: str
    source: str
    position: int = 0  # stream sequence of the last message handed out (or restored)
    consumer: str = ""  # "": to be made, delivering from position + 1
    subscription: Subscription | None = None  # to the current consumer's deliveries
    generation: int = 0  # bumped whenever the consumer is replaced: older deliveries are dropped
    queue: deque[Msg] = field(default_factory=deque)  # deliveries and status messages, in order
    waiting_until: float = 0.0  # an open waiting pull request lasts until then
    arrived: asyncio.Event | None = None  # set when a delivery is queued (a pull waits on it)
    stopped: str | None = None  # why this partition is not read (a message of a later format)


class PartitionConsumers:
    """The consumers of one reader's partitions: made when a partition is read, replaced when
    it is rewound, deleted once replaced. ``prefix`` starts their names (unique per reader)."""

    def __init__(
        self,
        spec: StreamSpec,
        connection: NatsConnection,
        *,
        prefix: str,
        stats: NatsReaderStats,
    ) -> None:
        self.spec = spec
        self._connection = connection
        self._names = prefix
        self._stats = stats
        self._stale: list[str] = []  # consumers replaced, to delete
        self._stale_subscriptions: list[Subscription] = []  # their deliveries, to unsubscribe
        self._arrived: asyncio.Event | None = None

    def drop(self, partition: Partition) -> None:
        """Replace the partition's consumer (made again, from its position, when next read);
        the old one is deleted and its late deliveries dropped."""
        partition.generation += 1
        if partition.consumer:
            self._stale.append(partition.consumer)
        if partition.subscription is not None:
            self._stale_subscriptions.append(partition.subscription)
            partition.subscription = None
        partition.consumer = ""
        partition.queue.clear()
        partition.waiting_until = 0.0

    def queued(self, partition: Partition, limit: int | None) -> list[Msg]:
        """Deliveries already queued for ``partition`` (status messages dropped)."""
        messages: list[Msg] = []
        queue = partition.queue
        while queue and (limit is None or len(messages) < limit):
            message = queue.popleft()
            if _status(message) is None:
                messages.append(message)
        return messages

    async def pull(self, client: NatsClient, partition: Partition, batch: int) -> list[Msg]:
        """Up to ``batch`` messages of ``partition`` available now: queued ones first, then one
        ``no_wait`` pull request."""
        messages = self.queued(partition, batch)
        if len(messages) >= batch or partition.subscription is None:
            return messages
        await self._request(client, partition, {"batch": batch - len(messages), "no_wait": True})
        deadline = time.monotonic() + ANSWER_GRACE_SECONDS
        queue = partition.queue
        generation = partition.generation
        while len(messages) < batch:
            if not queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    # JetStream always answers a pull (messages, 404 or 408) unless the
                    # consumer is gone: make it again (from the position) next time
                    self.drop(partition)
                    return messages
                arrived = partition.arrived = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await arrived.wait()
                if partition.generation != generation:
                    return messages
                continue
            message = queue.popleft()
            status = _status(message)
            if status is None:
                messages.append(message)
                continue
            if status in ("404", "408"):  # no (more) messages for this request
                break
            if status in ("409", _NO_RESPONDERS):
                # e.g. "Consumer Deleted", or no stream at all: set them up again
                log.warning("pull from %s: %s %s", self.spec.where, status, message.header)
                self.drop(partition)
                self._connection.stream_ready = False
                break
            # 100: heartbeat or flow control, nothing to hand out
        return messages

    async def _request(
        self, client: NatsClient, partition: Partition, request: dict[str, object]
    ) -> None:
        """Ask the partition's consumer for messages (a pull request)."""
        subscription = partition.subscription
        assert subscription is not None
        await client.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.spec.stream}.{partition.consumer}",
            json.dumps(request).encode(),
            reply=subscription.subject,
        )

    async def wait(
        self, client: NatsClient, partitions: list[Partition], fetch_wait: float, ask: int
    ) -> None:
        """Nothing was available: wait up to ``fetch_wait`` for a message in any partition
        (one waiting pull request per partition for ``ask`` messages, left open until it
        expires)."""
        now = time.monotonic()
        expires = int(fetch_wait * 1e9)
        for partition in partitions:
            if partition.waiting_until <= now and partition.subscription is not None:
                await self._request(client, partition, {"batch": ask, "expires": expires})
                partition.waiting_until = now + fetch_wait
        deadline = now + fetch_wait
        while not any(_has_message(p.queue) for p in partitions):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            arrived = self._arrived = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await arrived.wait()

    def _deliveries(self, partition: Partition) -> Callable[[Msg], Awaitable[None]]:
        """The callback of one consumer's deliveries: queued, unless the consumer was replaced
        since (a late delivery of an old consumer, before it was deleted)."""
        generation = partition.generation

        async def deliver(message: Msg) -> None:
            if partition.generation != generation or partition.stopped:
                return
            partition.queue.append(message)
            for arrived in (partition.arrived, self._arrived):
                if arrived is not None:
                    arrived.set()

        return deliver

    async def ensure(self, client: NatsClient, partitions: list[Partition]) -> None:
        missing = [p for p in partitions if not p.consumer]
        if missing:
            await asyncio.gather(*(self._make(client, p) for p in missing))

    async def _make(self, client: NatsClient, partition: Partition) -> None:
        name = f"{self._names}-{partition.index}-{partition.generation}"
        config = api.ConsumerConfig(
            name=name,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=partition.position + 1,
            ack_policy=api.AckPolicy.NONE,
            filter_subject=partition.subject,
            replay_policy=api.ReplayPolicy.INSTANT,
            inactive_threshold=CONSUMER_IDLE_SECONDS,
            num_replicas=1,
            mem_storage=True,  # nothing to keep: the position is in SQL
        )
        # subscribed first: the consumer delivers nothing before the first pull anyway
        partition.subscription = await client.subscribe(
            client.new_inbox(), cb=self._deliveries(partition)
        )
        try:
            await client.jetstream(timeout=5.0).add_consumer(self.spec.stream, config=config)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise EventLogUnavailable(
                f"cannot set up a consumer of {partition.subject} on {self.spec.where}: {exc!r}"
            ) from exc
        self._stats.consumers_created += 1
        partition.consumer = name

    async def delete_stale(self, client: NatsClient) -> None:
        """Delete replaced consumers, without waiting for the answers (JetStream would delete
        them anyway once idle)."""
        stale, self._stale = self._stale, []
        for name in stale:
            await client.publish(f"$JS.API.CONSUMER.DELETE.{self.spec.stream}.{name}", b"")
        subscriptions, self._stale_subscriptions = self._stale_subscriptions, []
        for subscription in subscriptions:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()


def _status(message: Msg) -> str | None:
    """The status code of a JetStream status message (None: an event)."""
    headers = message.headers
    return headers.get("Status") if headers else None


def _has_message(queue: deque[Msg]) -> bool:
    return any(_status(message) is None for message in queue)


def stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream delivery's reply subject (0 if it is not one):
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`` (9 tokens), or with a domain and
    an account hash after ``$JS.ACK`` (12 tokens or more). Deliveries carry it even without
    acks."""
    tokens = reply.split(".")
    index = 5 if len(tokens) == 9 else 7 if len(tokens) >= 12 else -1
    try:
        return int(tokens[index]) if index > 0 else 0
    except ValueError:
        return 0
