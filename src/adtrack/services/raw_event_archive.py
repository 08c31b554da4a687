"""The raw-event archive's port: where the aggregator puts raw events (not in the row store).

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
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.epoch_hours import HOUR_MICROS
from adtrack.domain.events import Event

__all__ = [
    "RAW_EVENT_SCHEMA",
    "RawEventArchive",
    "RawEventReader",
    "RawEventRetention",
    "RawFile",
    "epoch_hour_indices",
    "events_to_table",
]

# Raw events as columns: Event's fields, in its order. The aggregator decodes batches into it
# (aggregator/event_batch.py) and the archive writes them as they come.
RAW_EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("imp_type", pa.int16()),
        ("tracker_id", pa.int64()),
        ("advertiser_id", pa.int64()),
        ("line_item_id", pa.int64()),
        ("publisher_id", pa.int64()),
        ("placement_id", pa.int64()),
        ("payment_rule_id", pa.int64()),
        ("media_cost_micros", pa.int64()),
        ("booked_revenue_micros", pa.int64()),
        ("revenue_type", pa.string()),
        ("ancost_used", pa.bool_()),
        ("cachebuster", pa.string()),
        ("ip", pa.string()),
        ("user_agent", pa.string()),
        ("referrer", pa.string()),
        ("invalid", pa.bool_()),
        ("invalid_reason", pa.string()),
        ("redirect_url", pa.string()),
    ]
)
if tuple(RAW_EVENT_SCHEMA.names) != Event._fields:
    raise RuntimeError("RAW_EVENT_SCHEMA must list Event's fields, in order")
_BLOCK = 2048  # events turned into columns at a time


def epoch_hour_indices(ts: pa.ChunkedArray) -> pa.ChunkedArray:
    """The epoch hour of each value of a ``ts`` column: its microseconds floor-divided by an
    hour's (Arrow's integer division truncates toward zero, so negative ones are shifted)."""
    micros = ts.cast(pa.int64())
    shifted = pc.subtract(micros, pc.if_else(pc.less(micros, 0), HOUR_MICROS - 1, 0))
    return pc.divide(shifted, HOUR_MICROS)


def events_to_table(events: Sequence[Event]) -> pa.Table:
    """The events as an Arrow table, built column by column (one C loop per column) a block
    of events at a time: turning rows into columns over a few thousand tuples stays in the CPU
    cache, over a whole large batch it does not (it then costs twice as much per event)."""
    batches = []
    for start in range(0, len(events), _BLOCK):
        columns = zip(*events[start : start + _BLOCK], strict=True)
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(columns, RAW_EVENT_SCHEMA, strict=True)
        ]
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=RAW_EVENT_SCHEMA))
    return pa.Table.from_batches(batches, schema=RAW_EVENT_SCHEMA)


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
        """Write ``events`` (in log order, ``aggregator.event_batch.EVENT_SCHEMA``) to files
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
