"""Raw events as columns: the schema the aggregator decodes batches into and the archive
writes, and the conversion of events to it (the archive's ports: ``services/ports/raw_events.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.epoch_hours import HOUR_MICROS
from adtrack.domain.events import Event

__all__ = [
    "RAW_EVENT_SCHEMA",
    "columns_to_batch",
    "conform_columns",
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
        ("country", pa.string()),
        ("user_agent", pa.string()),
        ("device_type", pa.string()),
        ("os", pa.string()),
        ("browser", pa.string()),
        ("referrer", pa.string()),
        ("invalid", pa.bool_()),
        ("invalid_reason", pa.string()),
        ("redirect_url", pa.string()),
        ("view_state", pa.string()),
        ("impression_event_id", pa.string()),
    ]
)
if tuple(RAW_EVENT_SCHEMA.names) != Event._fields:
    raise RuntimeError("RAW_EVENT_SCHEMA must list Event's fields, in order")
_BLOCK = 2048  # events turned into columns at a time
_TS = RAW_EVENT_SCHEMA.names.index("ts")
_BUILD_TYPES = [pa.int64() if i == _TS else f.type for i, f in enumerate(RAW_EVENT_SCHEMA)]


def epoch_hour_indices(ts: pa.ChunkedArray) -> pa.ChunkedArray:
    """The epoch hour of each value of a ``ts`` column: its microseconds floor-divided by an
    hour's (Arrow's integer division truncates toward zero, so negative ones are shifted)."""
    micros = ts.cast(pa.int64())
    shifted = pc.subtract(micros, pc.if_else(pc.less(micros, 0), HOUR_MICROS - 1, 0))
    return pc.divide(shifted, HOUR_MICROS)


def conform_columns(batch: pa.RecordBatch, names: Sequence[str]) -> pa.RecordBatch:
    """``batch``'s columns ``names``, in that order; a column its file does not hold (written
    before the column existed) comes as nulls of the column's type."""
    present = set(batch.schema.names)
    if present.issuperset(names):
        return batch.select(names)
    arrays = [
        batch.column(name)
        if name in present
        else pa.nulls(batch.num_rows, RAW_EVENT_SCHEMA.field(name).type)
        for name in names
    ]
    fields = [
        batch.schema.field(name) if name in present else RAW_EVENT_SCHEMA.field(name)
        for name in names
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def columns_to_batch(columns: Iterable[Sequence[object]]) -> pa.RecordBatch:
    """Events given column by column (Event's fields, in its order) as one record batch."""
    arrays = [pa.array(values, type=_BUILD_TYPES[i]) for i, values in enumerate(columns)]
    # Times are built as plain 64-bit integers, then relabelled: a timestamp column built from
    # Python ints directly costs the aggregator a fifth more per event.
    arrays[_TS] = arrays[_TS].cast(RAW_EVENT_SCHEMA.field("ts").type)
    return pa.RecordBatch.from_arrays(arrays, schema=RAW_EVENT_SCHEMA)


def events_to_table(events: Sequence[Event]) -> pa.Table:
    """The events as an Arrow table, built column by column (one C loop per column) a block
    of events at a time: turning rows into columns over a few thousand tuples stays in the CPU
    cache, over a whole large batch it does not (it then costs twice as much per event)."""
    batches = [
        columns_to_batch(zip(*events[start : start + _BLOCK], strict=True))
        for start in range(0, len(events), _BLOCK)
    ]
    return pa.Table.from_batches(batches, schema=RAW_EVENT_SCHEMA)
