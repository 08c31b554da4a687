"""The JetStream event log's reader: partitions read by stream sequence, positions kept in SQL.

Each partition subject of the stream (``<subject>.<n>``, and the bare ``<subject>`` of versions
before partitions, see ``nats.py``) is one source, named ``nats:<stream>:<subject>``; its
position is the stream sequence of the last message handed out from it. A :class:`Batch` gives,
for every partition it read, ``starts`` (the position before it: the one the previous batch
ended at, or the one restored, 0 for none) and ``position`` (the sequence of its last message).
The aggregator commits the positions with the rollups, by compare-and-set against ``starts``;
that, not JetStream, makes each event count once.

The reader reads on after handing out a batch (the aggregator's commit and the next read do not
wait for each other's round trips), and ``restore(positions)`` rewinds every partition to the
committed positions (after a failed compare-and-set, on start).

How: one ephemeral pull consumer per partition read, with a filter subject, delivery from the
position + 1 (``by_start_sequence``), in-memory state and no acks (``AckPolicy.NONE``): the
position lives in SQL, so JetStream need not remember anything, and a consumer that goes missing
(server restart, idle too long) is simply made again from the position. Pulls ask JetStream to
push many messages per request and are sent to all partitions at once, so one read costs about
one round trip however many partitions it covers. (Direct gets would need a request per message
on this server version — no batch get before 2.11 — and the stream's ``allow_direct``.) Rewinding
makes new consumers; the old ones are deleted, and their late deliveries, which arrive on a
subject naming an older generation, are dropped.

Several aggregators: given an :class:`AggregatorMembership`, the reader records a heartbeat every
``heartbeat_seconds`` (on ``read``), and reads the partitions assigned to it among the live
members (``services/aggregator_members.assigned_partitions``). A partition it gains is read from
the committed position (``committed_positions``, loaded from SQL); one it loses is dropped at
once. Without a membership, it reads every partition (one aggregator, tests).

A message of a later format (``nats_format.FutureFormat``) stops its partition before that
message, logged as an error: skipping it would lose its events, so it waits for an aggregator
that can read it (``restore`` tries again). A malformed one is handed on as one record, which
the aggregator skips and logs, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api

from adtrack.adapters.eventlog.nats import StreamSpec, _Connection, partition_number
from adtrack.adapters.eventlog.nats_format import FutureFormat, MalformedMessage, decode_message
from adtrack.config import Settings
from adtrack.services.aggregator_members import assigned_partitions
from adtrack.services.ports import AggregatorMembership, Batch, EventLogUnavailable

__all__ = [
    "NatsEventLogReader",
    "NatsReaderStats",
    "open_nats_reader",
    "partition_source",
]

log = logging.getLogger(__name__)

FETCH_WAIT_SECONDS = 0.5  # an idle read waits this long for new messages
INITIAL_RECORDS_PER_MESSAGE = 1000  # a reader's first guess of the events in one message
CONSUMER_IDLE_SECONDS = 300.0  # JetStream deletes a partition consumer nobody pulled from
ANSWER_GRACE_SECONDS = 1.0  # beyond a pull's wait: no answer by then, the consumer is gone
_NO_RESPONDERS = "503"


def partition_source(stream: str, subject: str) -> str:
    """The source name of one partition (``eventlog_checkpoints.source``)."""
    return f"nats:{stream}:{subject}"


@dataclass
class NatsReaderStats:
    messages: int = 0
    records: int = 0
    malformed: int = 0  # batch messages whose frame did not check out (handed on as one record)
    future_format: int = 0  # messages of a later format (their partition stopped before them)
    consumers_created: int = 0
    heartbeats: int = 0
    heartbeat_failures: int = 0
    rewinds: int = 0  # partitions read again from a committed position (restore, gained)


@dataclass(eq=False)
class _Partition:
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


class NatsEventLogReader:
    """:class:`EventLogReader` (with ``restore``) on the partitions of a JetStream stream.

    ``consumer`` prefixes the names of its JetStream consumers. ``membership`` (with
    ``member``, default host-pid-random) shares the partitions with other aggregators;
    ``committed_positions`` loads the positions committed in SQL (source -> position), called
    from a thread when the reader gains a partition.
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        consumer: str = "aggregator",
        fetch_wait: float = FETCH_WAIT_SECONDS,
        connect_wait: float = 5.0,
        membership: AggregatorMembership | None = None,
        committed_positions: Callable[[], Mapping[str, int]] | None = None,
        member: str | None = None,
        heartbeat_seconds: float = 2.0,
        member_ttl_seconds: float = 10.0,
    ) -> None:
        self.spec = spec
        self.consumer = consumer
        self.fetch_wait = fetch_wait
        self.connect_wait = connect_wait
        self.membership = membership
        self.member = member or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.heartbeat_seconds = heartbeat_seconds
        self.member_ttl_seconds = member_ttl_seconds
        self.members: list[str] = []  # the live members at the last heartbeat
        self.stats = NatsReaderStats()
        self._committed_positions = committed_positions
        self._connection = _Connection(spec, name=f"adtrack-aggregator-{consumer}")
        self._names = f"{consumer}-{secrets.token_hex(4)}"  # prefix of this reader's consumers
        self._restored: dict[str, int] = {}  # the positions last restored (source -> position)
        self._partitions: dict[str, _Partition] = {}  # by subject
        for subject in spec.partition_subjects + [spec.subject]:
            self._add_partition(subject)
        # what is read now: every partition without a membership, else the assigned ones
        self._reading: list[_Partition] = [] if membership else self._ordered()
        self._next_heartbeat = 0.0
        self._last_heartbeat_ok = time.monotonic()
        self._stale: list[str] = []  # consumers replaced, to delete
        self._stale_subscriptions: list[Subscription] = []  # their deliveries, to unsubscribe
        self._arrived: asyncio.Event | None = None
        # events per message, as seen in the last pulls: how many messages to ask for. It errs
        # on the high side (a pull of too few messages costs one more round trip, one of too
        # many an oversized batch), so it starts high and falls by halves.
        self._records_per_message = INITIAL_RECORDS_PER_MESSAGE
        self._logged: set[str] = set()

    # ---- what is read --------------------------------------------------------------------------

    @property
    def partitions(self) -> list[str]:
        """Every partition's source name, in assignment order."""
        return [p.source for p in self._ordered()]

    @property
    def reading(self) -> list[str]:
        """The source names of the partitions this reader reads now."""
        return [p.source for p in self._reading]

    @property
    def positions(self) -> dict[str, int]:
        """The position of every partition read so far (source -> last sequence handed out)."""
        return {p.source: p.position for p in self._ordered() if p.position}

    def stopped(self) -> dict[str, str]:
        """Partitions not read because of a message this version cannot read: source -> why."""
        return {p.source: p.stopped for p in self._ordered() if p.stopped}

    def _add_partition(self, subject: str) -> _Partition:
        partition = self._partitions.get(subject)
        if partition is None:
            partition = _Partition(
                len(self._partitions), subject, partition_source(self.spec.stream, subject)
            )
            partition.position = self._restored.get(partition.source, 0)
            self._partitions[subject] = partition
        return partition

    def _ordered(self) -> list[_Partition]:
        """Numbered partitions in order, then the bare subject: the same list on every member."""

        def key(p: _Partition) -> tuple[int, int]:
            n = partition_number(self.spec.subject, p.subject)
            return (1, 0) if n is None else (0, n)

        return sorted(self._partitions.values(), key=key)

    def _discover_partitions(self) -> None:
        """Partitions the stream has beyond ours (ADTRACK_NATS_PARTITIONS was larger once):
        read too, or their messages would be stranded."""
        for subject in self._connection.stream_subjects:
            known = subject in self._partitions
            if not known and partition_number(self.spec.subject, subject) is not None:
                added = self._add_partition(subject)
                if self.membership is None:
                    self._reading = [p for p in self._ordered() if p in self._reading or p is added]

    # ---- positions -----------------------------------------------------------------------------

    def restore(self, positions: Mapping[str, int]) -> None:
        """Read every partition again from ``positions`` (source -> committed position; a
        partition not in it from the stream's start)."""
        self._restored = {str(k): int(v) for k, v in positions.items()}
        for partition in self._partitions.values():
            self._rewind(partition, self._restored.get(partition.source, 0))

    def _rewind(self, partition: _Partition, position: int) -> None:
        self.stats.rewinds += 1
        partition.position = position
        partition.stopped = None
        self._drop_consumer(partition)

    def _drop_consumer(self, partition: _Partition) -> None:
        partition.generation += 1
        if partition.consumer:
            self._stale.append(partition.consumer)
        if partition.subscription is not None:
            self._stale_subscriptions.append(partition.subscription)
            partition.subscription = None
        partition.consumer = ""
        partition.queue.clear()
        partition.waiting_until = 0.0

    async def ack(self, batch: Batch) -> None:
        """Nothing to do: the aggregator committed the positions with the rows."""
        return None

    # ---- reading -------------------------------------------------------------------------------

    async def read(self, max_records: int) -> Batch:
        """About ``max_records`` records from the partitions read: whole messages, asked for by
        the number of events per message seen so far (so a batch exceeds ``max_records`` by at
        most one pull's worth when messages grow). Waits up to ``fetch_wait`` when there are
        none."""
        client = await self._connection.get(self.connect_wait)
        self._discover_partitions()
        if self.membership is not None:
            await self._heartbeat()
        active = [p for p in self._reading if p.stopped is None]
        if not active:
            await asyncio.sleep(self.fetch_wait)
            return Batch(records=[], position=None, source=self.spec.stream)
        wanted = max(1, max_records)
        records: list[bytes] = []
        starts: dict[str, int] = {}
        ends: dict[str, int] = {}
        try:
            await self._delete_stale(client)
            await self._ensure_consumers(client, active)
            pulling = active
            while pulling and len(records) < wanted:
                # as many messages as should hold the records still wanted, by the sizes seen,
                # shared between the partitions still pulled from
                messages_wanted = -(-(wanted - len(records)) // self._records_per_message)
                ask = max(1, -(-messages_wanted // len(pulling)))
                pulled = await asyncio.gather(*(self._pull(client, p, ask) for p in pulling))
                more = []
                got = 0
                count = 0
                for partition, messages in zip(pulling, pulled, strict=True):
                    count += self._take(partition, messages, records, starts, ends)
                    got += len(messages)
                    if len(messages) >= ask and partition.stopped is None:
                        more.append(partition)  # it had that many: maybe more
                if got:
                    # more events per message than thought: believe it at once (so the next
                    # pull does not overshoot); fewer: halve the guess at most per pull
                    self._records_per_message = max(
                        1, round(count / got), self._records_per_message // 2
                    )
                pulling = more
            if not records:
                await self._wait(client, active)
                for partition in active:
                    self._take(partition, self._queued(partition, None), records, starts, ends)
        except BaseException as exc:
            # what this read took is not handed out: read it again next time
            for partition in active:
                if partition.source in starts:
                    partition.position = starts[partition.source]
                    self._drop_consumer(partition)
            if isinstance(exc, nats.errors.Error | OSError):
                raise EventLogUnavailable(f"reading {self.spec.where} failed: {exc!r}") from exc
            raise
        if not records:
            return Batch(records=[], position=None, source=self.spec.stream)
        return Batch(records=records, position=ends, starts=starts, source=self.spec.stream)

    def _take(
        self,
        partition: _Partition,
        messages: list[Msg],
        records: list[bytes],
        starts: dict[str, int],
        ends: dict[str, int],
    ) -> int:
        """Hand out ``messages`` of ``partition``: their records into ``records``, the
        partition's start and end into ``starts`` and ``ends``. Returns the records added."""
        added = 0
        for message in messages:
            sequence = _stream_sequence(message.reply)
            if sequence <= partition.position:
                if sequence == 0:
                    self._log_once("no-seq", f"a delivery without a stream sequence: {message!r}")
                continue  # delivered before (a consumer replaced while it was delivering)
            try:
                unpacked = decode_message(message.data)
            except FutureFormat as exc:
                self.stats.future_format += 1
                partition.stopped = f"message {sequence}: {exc}"
                self._log_once(
                    f"future-{partition.source}-{sequence}",
                    f"stopped reading {partition.subject} of {self.spec.where} at stream "
                    f"sequence {sequence}: {exc}; upgrade the aggregators (events after it in "
                    "this partition wait for an aggregator that can read it)",
                )
                self._drop_consumer(partition)
                break
            except MalformedMessage as exc:
                # Counting it is impossible and reading it again would not help: the aggregator
                # skips and logs it like any record that is not an event.
                self.stats.malformed += 1
                log.error("malformed batch message on %s: %s", self.spec.where, exc)
                unpacked = [message.data]
            starts.setdefault(partition.source, partition.position)
            partition.position = ends[partition.source] = sequence
            records += unpacked
            added += len(unpacked)
            self.stats.messages += 1
        self.stats.records += added
        return added

    def _queued(self, partition: _Partition, limit: int | None) -> list[Msg]:
        """Deliveries already queued for ``partition`` (status messages dropped)."""
        messages: list[Msg] = []
        queue = partition.queue
        while queue and (limit is None or len(messages) < limit):
            message = queue.popleft()
            if _status(message) is None:
                messages.append(message)
        return messages

    async def _pull(self, client: NatsClient, partition: _Partition, batch: int) -> list[Msg]:
        """Up to ``batch`` messages of ``partition`` available now: queued ones first, then one
        ``no_wait`` pull request."""
        messages = self._queued(partition, batch)
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
                    self._drop_consumer(partition)
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
                self._drop_consumer(partition)
                self._connection.stream_ready = False
                break
            # 100: heartbeat or flow control, nothing to hand out
        return messages

    async def _request(
        self, client: NatsClient, partition: _Partition, request: dict[str, object]
    ) -> None:
        """Ask the partition's consumer for messages (a pull request)."""
        subscription = partition.subscription
        assert subscription is not None
        await client.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.spec.stream}.{partition.consumer}",
            json.dumps(request).encode(),
            reply=subscription.subject,
        )

    async def _wait(self, client: NatsClient, partitions: list[_Partition]) -> None:
        """Nothing was available: wait up to ``fetch_wait`` for a message in any partition
        (one waiting pull request per partition, left open until it expires)."""
        now = time.monotonic()
        expires = int(self.fetch_wait * 1e9)
        ask = max(1, -(-1000 // self._records_per_message))
        for partition in partitions:
            if partition.waiting_until <= now and partition.subscription is not None:
                await self._request(client, partition, {"batch": ask, "expires": expires})
                partition.waiting_until = now + self.fetch_wait
        deadline = now + self.fetch_wait
        while not any(_has_message(p.queue) for p in partitions):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            arrived = self._arrived = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await arrived.wait()

    def _deliveries(self, partition: _Partition) -> Callable[[Msg], Awaitable[None]]:
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

    async def _ensure_consumers(self, client: NatsClient, partitions: list[_Partition]) -> None:
        missing = [p for p in partitions if not p.consumer]
        if missing:
            await asyncio.gather(*(self._make_consumer(client, p) for p in missing))

    async def _make_consumer(self, client: NatsClient, partition: _Partition) -> None:
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
        self.stats.consumers_created += 1
        partition.consumer = name

    async def _delete_stale(self, client: NatsClient) -> None:
        """Delete replaced consumers, without waiting for the answers (JetStream would delete
        them anyway once idle)."""
        stale, self._stale = self._stale, []
        for name in stale:
            await client.publish(f"$JS.API.CONSUMER.DELETE.{self.spec.stream}.{name}", b"")
        subscriptions, self._stale_subscriptions = self._stale_subscriptions, []
        for subscription in subscriptions:
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    # ---- sharing the partitions ----------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Every ``heartbeat_seconds``: tell the membership this reader is alive and read the
        partitions assigned to it now."""
        membership = self.membership
        now = time.monotonic()
        if membership is None or now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.heartbeat_seconds
        try:
            members = await asyncio.to_thread(membership.heartbeat, self.member)
        except Exception as exc:  # the database is unreachable: keep going as we were...
            self.stats.heartbeat_failures += 1
            self._log_once("heartbeat", f"aggregator heartbeat failed: {exc!r}")
            if now - self._last_heartbeat_ok > self.member_ttl_seconds and self._reading:
                # ...until the others must think this one gone and have taken its partitions
                log.warning("%s: no heartbeat for too long, reading nothing", self.member)
                await self._assign([])
            return
        self._logged.discard("heartbeat")
        self.stats.heartbeats += 1
        self._last_heartbeat_ok = now
        self.members = members
        ordered = self._ordered()
        mine = set(assigned_partitions([p.source for p in ordered], members, self.member))
        await self._assign([p for p in ordered if p.source in mine])

    async def _assign(self, partitions: list[_Partition]) -> None:
        before = set(self._reading)
        for partition in before.difference(partitions):  # another member reads it now
            self._drop_consumer(partition)
        gained = [p for p in partitions if p not in before]
        if gained:
            try:
                positions = await self._load_committed()
            except Exception as exc:
                # not read until its committed position is known: the next heartbeat retries
                self._log_once("positions", f"cannot load committed positions: {exc!r}")
                partitions = [p for p in partitions if p in before]
                gained = []
            else:
                self._logged.discard("positions")
                for partition in gained:
                    self._rewind(partition, positions.get(partition.source, 0))
        if gained or len(partitions) != len(before):
            log.info(
                "%s reads %d of %d partitions of %s (%d live aggregators)",
                self.member,
                len(partitions),
                len(self._partitions),
                self.spec.where,
                len(self.members),
            )
        self._reading = partitions

    async def _load_committed(self) -> Mapping[str, int]:
        load = self._committed_positions
        if load is None:
            return self._restored
        return await asyncio.to_thread(load)

    # ---- the rest ------------------------------------------------------------------------------

    def _log_once(self, condition: str, message: str) -> None:
        if condition not in self._logged:
            self._logged.add(condition)
            log.error("%s", message)

    async def close(self) -> None:
        membership = self.membership
        if membership is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(membership.leave, self.member)
        client = self._connection.client
        if client is not None and client.is_connected:
            for partition in self._partitions.values():
                self._drop_consumer(partition)
            with contextlib.suppress(Exception):
                await self._delete_stale(client)
                await client.flush(timeout=2)
        await self._connection.close()


def _status(message: Msg) -> str | None:
    """The status code of a JetStream status message (None: an event)."""
    headers = message.headers
    return headers.get("Status") if headers else None


def _has_message(queue: deque[Msg]) -> bool:
    return any(_status(message) is None for message in queue)


def _stream_sequence(reply: str) -> int:
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


def open_nats_reader(
    settings: Settings,
    *,
    consumer: str,
    membership: AggregatorMembership | None = None,
    committed_positions: Callable[[], Mapping[str, int]] | None = None,
) -> NatsEventLogReader:
    return NatsEventLogReader(
        StreamSpec.from_settings(settings),
        consumer=consumer,
        membership=membership,
        committed_positions=committed_positions,
        heartbeat_seconds=settings.aggregator_heartbeat_seconds,
        member_ttl_seconds=settings.aggregator_member_ttl_seconds,
    )
