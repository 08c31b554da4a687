"""The JetStream event log's reader: partitions read by stream sequence, positions kept in SQL.

Each partition subject of the stream (``<subject>.<n>``, and the bare ``<subject>`` of versions
before partitions, see ``nats_stream.py``) is one source, named ``nats:<stream>:<subject>``; its
position is the stream sequence of the last message handed out from it. A :class:`Batch` gives,
for every partition it read, ``starts`` (the position before it: the one the previous batch
ended at, or the one restored, 0 for none) and ``position`` (the sequence of its last message).
The aggregator commits the positions with the rollups, by compare-and-set against ``starts``;
that, not JetStream, makes each event count once.

The reader reads on after handing out a batch (the aggregator's commit and the next read do not
wait for each other's round trips), and ``restore(positions)`` rewinds every partition to the
committed positions (after a failed compare-and-set, on start).

How: one ephemeral pull consumer per partition read, delivering from the position + 1, made again
from the position whenever it goes missing or the partition is rewound (``nats_consumers.py``).

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
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import nats.errors
from nats.aio.msg import Msg

from adtrack.adapters.eventlog.nats_connection import NatsConnection
from adtrack.adapters.eventlog.nats_consumers import Partition, PartitionConsumers, stream_sequence
from adtrack.adapters.eventlog.nats_format import FutureFormat, MalformedMessage, decode_message
from adtrack.adapters.eventlog.nats_stream import StreamSpec, partition_number
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
        self._connection = NatsConnection(spec, name=f"adtrack-aggregator-{consumer}")
        self._consumers = PartitionConsumers(
            spec, self._connection, prefix=f"{consumer}-{secrets.token_hex(4)}", stats=self.stats
        )
        self._restored: dict[str, int] = {}  # the positions last restored (source -> position)
        self._partitions: dict[str, Partition] = {}  # by subject
        for subject in spec.partition_subjects + [spec.subject]:
            self._add_partition(subject)
        # what is read now: every partition without a membership, else the assigned ones
        self._reading: list[Partition] = [] if membership else self._ordered()
        self._next_heartbeat = 0.0
        self._last_heartbeat_ok = time.monotonic()
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

    def _add_partition(self, subject: str) -> Partition:
        partition = self._partitions.get(subject)
        if partition is None:
            partition = Partition(
                len(self._partitions), subject, partition_source(self.spec.stream, subject)
            )
            partition.position = self._restored.get(partition.source, 0)
            self._partitions[subject] = partition
        return partition

    def _ordered(self) -> list[Partition]:
        """Numbered partitions in order, then the bare subject: the same list on every member."""

        def key(p: Partition) -> tuple[int, int]:
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

    def _rewind(self, partition: Partition, position: int) -> None:
        self.stats.rewinds += 1
        partition.position = position
        partition.stopped = None
        self._consumers.drop(partition)

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
            await self._consumers.delete_stale(client)
            await self._consumers.ensure(client, active)
            pulling = active
            while pulling and len(records) < wanted:
                # as many messages as should hold the records still wanted, by the sizes seen,
                # shared between the partitions still pulled from
                messages_wanted = -(-(wanted - len(records)) // self._records_per_message)
                ask = max(1, -(-messages_wanted // len(pulling)))
                pulled = await asyncio.gather(
                    *(self._consumers.pull(client, p, ask) for p in pulling)
                )
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
                ask = max(1, -(-1000 // self._records_per_message))
                await self._consumers.wait(client, active, self.fetch_wait, ask)
                for partition in active:
                    queued = self._consumers.queued(partition, None)
                    self._take(partition, queued, records, starts, ends)
        except BaseException as exc:
            # what this read took is not handed out: read it again next time
            for partition in active:
                if partition.source in starts:
                    partition.position = starts[partition.source]
                    self._consumers.drop(partition)
            if isinstance(exc, nats.errors.Error | OSError):
                raise EventLogUnavailable(f"reading {self.spec.where} failed: {exc!r}") from exc
            raise
        if not records:
            return Batch(records=[], position=None, source=self.spec.stream)
        return Batch(records=records, position=ends, starts=starts, source=self.spec.stream)

    def _take(
        self,
        partition: Partition,
        messages: list[Msg],
        records: list[bytes],
        starts: dict[str, int],
        ends: dict[str, int],
    ) -> int:
        """Hand out ``messages`` of ``partition``: their records into ``records``, the
        partition's start and end into ``starts`` and ``ends``. Returns the records added."""
        added = 0
        for message in messages:
            sequence = stream_sequence(message.reply)
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
                self._consumers.drop(partition)
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

    async def _assign(self, partitions: list[Partition]) -> None:
        before = set(self._reading)
        for partition in before.difference(partitions):  # another member reads it now
            self._consumers.drop(partition)
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
                self._consumers.drop(partition)
            with contextlib.suppress(Exception):
                await self._consumers.delete_stale(client)
                await client.flush(timeout=2)
        await self._connection.close()


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
