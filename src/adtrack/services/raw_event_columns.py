"""Raw events as columns: the schema the aggregator decodes batches into and the archive
writes, and the conversion of events to it (the archive's ports: ``services/ports/raw_events.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.epoch_hours import HOUR_MICROS
from adtrack.domain.events import ADDED_IN_FORMAT_3, Event

__all__ = [
    "RAW_EVENT_SCHEMA",
    "conform_columns",
    "epoch_hour_indices",
    "events_to_table",
    "rows_to_batch",
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
        ("conversion_pixel_id", pa.int64()),
        ("order_id", pa.string()),
        ("attribution", pa.string()),
        ("attribution_reason", pa.string()),
        ("source_event_id", pa.string()),
        ("source_ts", pa.timestamp("us", tz="UTC")),
    ]
)
if tuple(RAW_EVENT_SCHEMA.names) != Event._fields:
    raise RuntimeError("RAW_EVENT_SCHEMA must list Event's fields, in order")
# the times: built as plain 64-bit integers, then relabelled (see rows_to_batch)
_TIMES = tuple(RAW_EVENT_SCHEMA.names.index(name) for name in ("ts", "source_ts"))
_BUILD_TYPES = [pa.int64() if i in _TIMES else f.type for i, f in enumerate(RAW_EVENT_SCHEMA)]
_WIDTH = len(RAW_EVENT_SCHEMA)
# a row of the first n fields, as Arrow reads it (n: every field, or those before the
# conversion fields), and, tagged, the same after a leading record format
_ROW_FIELDS = [
    pa.field(name, type_) for name, type_ in zip(RAW_EVENT_SCHEMA.names, _BUILD_TYPES, strict=True)
]
_ROW_TYPES = {
    (n, tagged): pa.struct([pa.field("format", pa.int64())] * tagged + _ROW_FIELDS[:n])
    for n in (_WIDTH, _WIDTH - len(ADDED_IN_FORMAT_3))
    for tagged in (False, True)
}


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


def rows_to_batch(
    rows: Sequence[Sequence[object]], width: int = _WIDTH, *, tagged: bool = False
) -> pa.RecordBatch:
    """Events given as tuples of Event's fields, in its order, as one record batch. Tuples of
    the first ``width`` fields only (records without the conversion fields) leave the others
    null; ``tagged`` tuples start with their record's format, which is dropped. Raises
    ``pa.ArrowException`` for a value its column cannot hold.

    Arrow reads the tuples as one struct array, in one C++ pass, and hands its fields over as
    the columns: a quarter cheaper than a Python list per field made into an array each.
    """
    fields = pa.array(rows, type=_ROW_TYPES[width, tagged]).flatten()[tagged:]
    n = len(rows)
    arrays = [*fields, *(pa.nulls(n, _BUILD_TYPES[i]) for i in range(width, _WIDTH))]
    # Times are built as plain 64-bit integers, then relabelled: a timestamp column built from
    # Python ints directly costs the aggregator a fifth more per event.
    for i in _TIMES:
        arrays[i] = arrays[i].cast(RAW_EVENT_SCHEMA.field(i).type)
    return pa.RecordBatch.from_arrays(arrays, schema=RAW_EVENT_SCHEMA)


def events_to_table(events: Sequence[Event]) -> pa.Table:
    """The events as an Arrow table."""
    return pa.Table.from_batches([rows_to_batch(events)], schema=RAW_EVENT_SCHEMA)
