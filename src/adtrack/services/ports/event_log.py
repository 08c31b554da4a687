"""The event log's interfaces. Adapters: ``adapters/eventlog/local_writer.py`` and
``local_reader.py`` (embedded, default), ``adapters/eventlog/nats_writer.py`` and
``nats_reader.py`` (JetStream, for many collectors).

Writers are used by collectors: ``append`` returns only when the records are as durable as the
configured policy promises, so the collector may answer the requests that produced them.
Readers are used by aggregators: they hand out batches and learn, through ``ack``, that the batch
was committed downstream. Exactly-once rests on log positions: a batch says where it starts
(``starts``) and ends (``position``) in each source it read (a local segment, a JetStream
partition); the aggregator commits the end positions only if the stored ones still equal the
starts, in the same transaction as the rollups, so a batch read twice (a replay, a redelivery,
a second aggregator) commits once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class EventLogUnavailable(Exception):
    """The log cannot take writes now (disk full, store down). Collectors answer 503."""


@dataclass
class Batch:
    """Records read from the log, with an opaque position to commit once they are stored."""

    records: list[bytes]
    # source -> position after the batch (None: the reader keeps no positions)
    position: object = None
    # source -> position the batch starts at (what the committed position must still be)
    starts: dict[str, int] = field(default_factory=dict)
    source: str = ""  # adapter-specific name of what was read (segment, stream)
    meta: dict[str, object] = field(default_factory=dict)


class EventLogWriter(Protocol):
    async def append(self, records: Sequence[bytes]) -> None:
        """Make ``records`` durable (per the fsync policy), or raise ``EventLogUnavailable``."""
        ...

    def readiness(self) -> str | None:
        """None while appends can be expected to succeed, else a short reason why not (the
        last append failed and it has not recovered, the store is unreachable, the disk is
        full). Cheap and non-blocking: ``/readyz`` calls it on the event loop, and a failed
        writer may use the call to try recovering (a load balancer that routed away sends no
        appends that would)."""
        ...

    async def close(self) -> None: ...


class SynchronousEventLogWriter(EventLogWriter, Protocol):
    """A writer whose policy can be kept without awaiting (a local log that does not wait for
    an fsync): ``append_now`` returns once the records are as durable as ``append`` makes them.
    Collectors use it when ``writes_synchronously`` is true, to answer without a round trip
    through the event loop."""

    @property
    def writes_synchronously(self) -> bool: ...

    def append_now(self, records: Sequence[bytes]) -> None: ...


class EventLogReader(Protocol):
    async def read(self, max_records: int) -> Batch:
        """The next records not yet acked (possibly none)."""
        ...

    async def ack(self, batch: Batch) -> None:
        """The batch is stored downstream; it need not be delivered again."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class RestorableReader(Protocol):
    """A reader that can resume from positions the aggregator committed."""

    def restore(self, positions: Mapping[str, int]) -> None: ...


@runtime_checkable
class PrunableReader(Protocol):
    """A reader whose consumed data can be deleted (the local log's old segments)."""

    def prune(self, min_age_seconds: float) -> list[str]: ...
