"""The raw-event archive's ports: where the aggregator puts raw events (not in the row store).

The aggregator hands each batch's events to :meth:`RawEventArchive.stage` BEFORE it commits the
batch: the archive writes them as columnar files (one per UTC hour the batch touches), each
written atomically under a name derived from ``batch_key`` (the log range the batch covers), so
the same range always yields the same files with the same content. The aggregator then lists
the returned :class:`RawFile` rows in the ``raw_event_files`` manifest in the same transaction
as the rollups and log positions. Files whose batch never committed are not in the manifest:
readers never see them and the archive deletes them later.

Adapter: ``adapters/raw_events/`` (Parquet files read with DuckDB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the collector imports the ports and needs neither
    import pyarrow as pa
    from sqlalchemy import Engine

__all__ = [
    "RawEventArchive",
    "RawEventArchiveUpkeep",
    "RawEventReader",
    "RawEventRetention",
    "RawEventStore",
    "RawFile",
]


@dataclass(frozen=True, slots=True)
class RawFile:
    """One archive file, as the manifest lists it."""

    path: str  # relative to the archive's root, "/"-separated
    hour: int  # the UTC hour of every event in it, as an epoch hour index
    rows: int
    clicks: int  # how many of the rows are clicks (imp_type 10): lets click feeds skip files
    bytes: int


class RawEventArchive(Protocol):
    def stage(self, events: pa.Table, batch_key: str) -> list[RawFile]:
        """Write ``events`` (in log order, ``RAW_EVENT_SCHEMA``) to files
        named after ``batch_key`` and return them; idempotent: the same events and key give the
        same files. Raises ``OSError`` when it cannot write (the aggregator retries the
        batch)."""
        ...


class RawEventReader(Protocol):
    """Reading the archive back (the log-level feeds)."""

    def read(
        self,
        start: datetime,
        end: datetime,
        *,
        imp_type: int | None = None,
        columns: Sequence[str] | None = None,
        batch_rows: int = ...,
    ) -> Iterator[pa.RecordBatch]:
        """Committed events from ``start`` (inclusive) to ``end`` (exclusive), of ``imp_type``
        when given, as Arrow record batches of at most ``batch_rows`` rows holding ``columns``
        (:class:`Event` field names; ``ts`` a UTC timestamp; a text column either strings or
        a dictionary of strings), in ``(ts, event_id)`` order. Lazily, with bounded memory: a
        batch is read when it is asked for."""
        ...


class RawEventRetention(Protocol):
    """Deleting what is past the raw-event retention."""

    def purge(self, before: datetime) -> int:
        """Remove the events of every UTC hour that ends at or before ``before`` (files and
        manifest rows); returns how many events were removed."""
        ...


class RawEventArchiveUpkeep(Protocol):
    """Keeping the archive's files few and listed (one aggregator per installation does it)."""

    def compact(self, engine: Engine, closed_before_hour: datetime) -> int:
        """Merge the files of each hour that starts before ``closed_before_hour`` into one
        file sorted by ``(ts, event_id)``; returns how many files were merged away."""
        ...

    def delete_orphans(self, engine: Engine, min_age_seconds: float) -> int:
        """Delete the files the manifest does not list, once older than ``min_age_seconds``;
        returns how many were deleted."""
        ...


class RawEventStore(RawEventArchive, RawEventArchiveUpkeep, Protocol):
    """The archive's writer side, as the aggregator's process holds it."""
