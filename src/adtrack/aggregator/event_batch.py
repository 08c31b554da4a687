"""Log records -> one Arrow table per batch: what the fold and the raw-event archive read.

The aggregator's cost per event is mostly decoding, so a batch's records are decoded as one JSON
array by a compiled, typed decoder (msgspec) into structs the cycle collector does not track
(20,000 tracked tuples a batch cost the aggregator a third more time in collections), whose
values Arrow then reads as rows in one pass (``rows_to_batch``: 15 % less than a list per field
made into an array each). The decoder accepts exactly the records (format 3, ``[3, <Event's
fields>...]``, and format 2, the collector's impressions and clicks, without the conversion
fields) that ``Event.from_bytes`` would keep unchanged; a batch holding anything else (a
text to cut, a NUL to drop, a flag that is not a JSON boolean, a record of the earlier keyed
layout, a malformed record) is decoded record by record, and the records the decoder refuses go
through ``Event.from_bytes``, the one definition of the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.events import (
    ADDED_IN_FORMAT_3,
    FLAG_FIELDS,
    HIT_RECORD_FORMAT,
    IMP_TYPES,
    MAX_EVENT_ID_LENGTH,
    OPTIONAL_INT_FIELDS,
    RECORD_FORMAT,
    REQUIRED_INT_FIELDS,
    TEXT_LIMITS,
    TS_MAX,
    TS_MIN,
    Event,
    MalformedEvent,
)
from adtrack.services.raw_event_columns import events_to_table, rows_to_batch

__all__ = ["DecodedBatch", "decode_batch"]

_INT64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]


# Any: msgspec.defstruct takes each field's type as a run-time type expression (typed Any there).
def _field_type(name: str) -> Any:
    """The fast decoder's type of one of Event's fields."""
    if name == "event_id":
        return Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_LENGTH)]
    if name == "ts":
        return Annotated[int, msgspec.Meta(ge=TS_MIN, le=TS_MAX)]
    if name in REQUIRED_INT_FIELDS:
        return _INT64
    if name in OPTIONAL_INT_FIELDS:
        return _INT64 | None
    if name in FLAG_FIELDS:
        return bool  # JSON booleans only: anything else goes to from_bytes
    width = TEXT_LIMITS[name]
    text: Any = str if width is None else Annotated[str, msgspec.Meta(max_length=width)]
    if name == "revenue_type":
        return text  # from_bytes reads null as "none"
    return text | None


# The fast decoder's records, derived from Event and its rules (one definition of both): format
# 2 (impressions and clicks) and format 3 (its fields and the conversion ones), told apart by
# the first element of the array (msgspec's tag of an array-like struct).
_FORMAT_2_FIELDS = Event._fields[: -len(ADDED_IN_FORMAT_3)]
_Record = msgspec.defstruct(
    "_Record",
    [(name, _field_type(name)) for name in _FORMAT_2_FIELDS],
    array_like=True,  # [format, event_id, ts, ...]
    forbid_unknown_fields=True,  # (an array too long is not a record)
    gc=False,  # flat records of primitives: no reference cycles to track
    tag=HIT_RECORD_FORMAT,
)
_ConversionRecord = msgspec.defstruct(
    "_ConversionRecord",
    [(name, _field_type(name)) for name in ADDED_IN_FORMAT_3],
    bases=(_Record,),
    array_like=True,
    forbid_unknown_fields=True,
    gc=False,
    tag=RECORD_FORMAT,
)
_AnyRecord: Any = _Record | _ConversionRecord
_decode_records = msgspec.json.Decoder(list[_AnyRecord]).decode
_decode_record = msgspec.json.Decoder(_AnyRecord).decode
_NO_CONVERSION_FIELDS = (None,) * len(ADDED_IN_FORMAT_3)
_astuple = msgspec.structs.astuple
_NUL = b"\\u0000"  # JSON's spelling of NUL, which from_bytes drops from texts


@dataclass
class DecodedBatch:
    table: pa.Table  # the events, in log order, with RAW_EVENT_SCHEMA
    malformed: list[tuple[bytes, MalformedEvent]]  # records that are not events, and why


def decode_batch(records: Sequence[bytes]) -> DecodedBatch:
    """Decode ``records`` (log order kept); records that are not events are set aside."""
    if not records:
        return DecodedBatch(table=events_to_table([]), malformed=[])
    parts = list(records)  # brackets on the end records: the batch is copied once, not thrice
    parts[0] = b"[" + parts[0]
    parts[-1] = parts[-1] + b"]"
    batch = b",".join(parts)
    if _NUL not in batch:
        try:
            decoded = _decode_records(batch)  # also what fails validation
        except msgspec.DecodeError:
            pass
        else:
            # one struct per record (a record holding two would shift the count)
            if len(decoded) == len(records):
                table = _table(decoded)
                if table is not None:
                    return DecodedBatch(table=table, malformed=[])
    return _decode_one_by_one(records)


def _table(decoded: list[Any]) -> pa.Table | None:
    """The decoded records as a table; None if one has an impression type no event has (the
    batch then goes record by record, where ``Event.from_bytes`` names it)."""
    if _ConversionRecord in set(map(type, decoded)):  # (in C: no Python loop per record)
        width = len(Event._fields)
        rows = [
            row if len(row) == width else row + _NO_CONVERSION_FIELDS
            for row in map(_astuple, decoded)
        ]
    else:  # most batches: impressions and clicks only
        width = len(_FORMAT_2_FIELDS)
        rows = list(map(_astuple, decoded))
    try:
        batch = rows_to_batch(rows, width)
    except pa.ArrowException:  # a value its column cannot hold: an impression type beyond 16 bits
        return None
    if not pc.all(pc.is_in(batch.column(_IMP_TYPE), value_set=_IMP_TYPES)).as_py():
        return None
    return pa.Table.from_batches([batch])


def _decode_one_by_one(records: Sequence[bytes]) -> DecodedBatch:
    """For a batch with a record the fast decoder does not take as it is: that record (and
    any like it) through ``Event.from_bytes``, the others still through the fast decoder."""
    rows: list[Event] = []
    malformed: list[tuple[bytes, MalformedEvent]] = []
    for raw in records:
        if _NUL not in raw:
            try:
                record = _decode_record(raw)
            except msgspec.DecodeError:
                pass
            else:
                row = _astuple(record)
                if row[_IMP_TYPE] in IMP_TYPES:
                    if type(record) is _Record:
                        row += _NO_CONVERSION_FIELDS
                    rows.append(Event._make(row))
                    continue
        try:
            rows.append(Event.from_bytes(raw))
        except MalformedEvent as exc:
            malformed.append((raw, exc))
    return DecodedBatch(table=events_to_table(rows), malformed=malformed)


_IMP_TYPE = Event._fields.index("imp_type")
_IMP_TYPES = pa.array(sorted(IMP_TYPES), pa.int16())
