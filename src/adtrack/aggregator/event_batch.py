"""Log records -> one Arrow table per batch: what the fold and the raw-event archive read.

The aggregator's cost per event is mostly decoding, so a batch's records are decoded a thousand
at a time (a part), each part as one JSON array by a compiled, typed decoder (msgspec), whose
values Arrow then reads as rows in one pass (``rows_to_batch``: 15 % less than a list per field
made into an array each). A part's Python objects are still in the CPU's cache when Arrow reads
and then frees them: a 20,000-record batch decoded whole cost 1.4 times as much. A part of hits
only (format 2, what the collector writes for impressions and clicks: nearly every part) is
decoded straight into tuples, a third cheaper than structs turned into tuples; a part with
conversions too (format 3, ``[3, <Event's fields>...]``) into structs of either format, told
apart by their first element. The decoders accept exactly the records that ``Event.from_bytes``
would keep unchanged; a part holding anything else (a text to cut, a NUL to drop, a flag that
is not a JSON boolean, an impression type no event has, a record of the earlier keyed layout, a
malformed record) is decoded record by record, and the records the decoders refuse go through
``Event.from_bytes``, the one definition of the rules.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import pyarrow as pa

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
    if name == "imp_type":
        return Literal[tuple(sorted(IMP_TYPES))]  # (a JSON true is no impression type)
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


# The fast decoders' records, derived from Event and its rules (one definition of both): format
# 2 (impressions and clicks) and format 3 (its fields and the conversion ones). A part of hits
# only is decoded into tuples ([format, event_id, ts, ...]); one with conversions too into
# structs, told apart by the first element of the array (msgspec's tag of an array-like struct).
_FORMAT_2_FIELDS = Event._fields[: -len(ADDED_IN_FORMAT_3)]
# (a tuple type of Event's fields, made at run time: tuple[...] needs them written out)
_Hit: Any = tuple.__class_getitem__(
    (Literal[HIT_RECORD_FORMAT], *map(_field_type, _FORMAT_2_FIELDS))
)
_decode_hits = msgspec.json.Decoder(list[_Hit]).decode
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
_START = operator.itemgetter(slice(2))
_CONVERSION_START = f"[{RECORD_FORMAT}".encode()  # (only a hint of a conversion: decoders judge)
_PART = 1_000  # records decoded at a time (see the module's docstring)


@dataclass
class DecodedBatch:
    table: pa.Table  # the events, in log order, with RAW_EVENT_SCHEMA
    malformed: list[tuple[bytes, MalformedEvent]]  # records that are not events, and why


def decode_batch(records: Sequence[bytes], *, part_size: int = _PART) -> DecodedBatch:
    """Decode ``records`` (log order kept), ``part_size`` at a time; records that are not
    events are set aside."""
    if not records:
        return DecodedBatch(table=events_to_table([]), malformed=[])
    decoded = [
        _decode_part(records[start : start + part_size])
        for start in range(0, len(records), part_size)
    ]
    if len(decoded) == 1:
        return decoded[0]
    return DecodedBatch(
        # one chunk per column: the fold's grouping costs a third more over twenty
        table=pa.concat_tables([part.table for part in decoded]).combine_chunks(),
        malformed=[refused for part in decoded for refused in part.malformed],
    )


def _decode_part(records: Sequence[bytes]) -> DecodedBatch:
    """``decode_batch`` of one part."""
    parts = list(records)  # brackets on the end records: the part is copied once, not thrice
    parts[0] = b"[" + parts[0]
    parts[-1] = parts[-1] + b"]"
    batch = b",".join(parts)
    # (a backslash is rare in records: looking for one byte costs a twentieth of looking for six)
    if b"\\" not in batch or _NUL not in batch:
        if _CONVERSION_START in map(_START, records):
            decoded = _decode_whole(_decode_records, batch, len(records))
            table = None if decoded is None else _table_with_conversions(decoded)
        else:  # nearly every part: impressions and clicks only
            hits = _decode_whole(_decode_hits, batch, len(records))
            table = None if hits is None else _table_of_hits(hits)
        if table is not None:
            return DecodedBatch(table=table, malformed=[])
    return _decode_one_by_one(records)


def _decode_whole(
    decode: Callable[[bytes], list[Any]], batch: bytes, count: int
) -> list[Any] | None:
    """The ``count`` records of ``batch`` (a JSON array) decoded by ``decode``, or None if it
    refuses one of them (also what fails validation) or the count does not match (a record
    holding two would shift it)."""
    try:
        decoded = decode(batch)
    except msgspec.DecodeError:
        return None
    return decoded if len(decoded) == count else None


def _table_of_hits(hits: list[Any]) -> pa.Table:
    """Tuples of hits ([format, <format 2's fields>...]) as a table."""
    return pa.Table.from_batches([rows_to_batch(hits, len(_FORMAT_2_FIELDS), tagged=True)])


def _table_with_conversions(decoded: list[Any]) -> pa.Table:
    """Structs of either format as a table (hits without the conversion fields)."""
    width = len(Event._fields)
    rows = [
        row if len(row) == width else row + _NO_CONVERSION_FIELDS for row in map(_astuple, decoded)
    ]
    return pa.Table.from_batches([rows_to_batch(rows)])


def _decode_one_by_one(records: Sequence[bytes]) -> DecodedBatch:
    """For a part with a record the fast decoder does not take as it is: that record (and
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
                if type(record) is _Record:
                    row += _NO_CONVERSION_FIELDS
                rows.append(Event._make(row))
                continue
        try:
            rows.append(Event.from_bytes(raw))
        except MalformedEvent as exc:
            malformed.append((raw, exc))
    return DecodedBatch(table=events_to_table(rows), malformed=malformed)
