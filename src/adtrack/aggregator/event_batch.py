"""Log records -> one Arrow table per batch: what the fold and the raw-event archive read.

The aggregator's cost per event is mostly decoding, so records are decoded with a compiled,
typed JSON decoder (msgspec) into the columns at once. It accepts exactly the records that
``Event.from_bytes`` would keep unchanged; anything else (a text to cut, a NUL to drop, a flag
that is not a JSON boolean, a malformed record) goes through ``Event.from_bytes``, the one
definition of the rules, record by record.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.events import (
    FLAG_FIELDS,
    IMP_TYPES,
    MAX_EVENT_ID_LENGTH,
    OPTIONAL_INT_FIELDS,
    REQUIRED_INT_FIELDS,
    TEXT_LIMITS,
    Event,
    MalformedEvent,
)
from adtrack.services.raw_event_archive import RAW_EVENT_SCHEMA, events_to_table

__all__ = ["DecodedBatch", "decode_batch"]

_INT64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]


def _field(name: str) -> tuple[str, Any] | tuple[str, Any, Any]:
    """The fast decoder's type (and default) of one of Event's fields."""
    if name == "event_id":
        return (name, Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_LENGTH)])
    if name in REQUIRED_INT_FIELDS:
        return (name, _INT64)
    if name in OPTIONAL_INT_FIELDS:
        return (name, _INT64 | None, None)
    if name in FLAG_FIELDS:
        return (name, bool, False)  # JSON booleans only: anything else goes to from_bytes
    width = TEXT_LIMITS[name]
    text: Any = str if width is None else Annotated[str, msgspec.Meta(max_length=width)]
    if name == "revenue_type":
        return (name, text, "none")  # from_bytes' default
    return (name, text | None, None)


# The fast decoder's record type, derived from Event and its rules (one definition of both).
_Record = msgspec.defstruct(
    "_Record",
    [_field(name) for name in Event._fields],
    kw_only=True,  # required fields after optional ones, as in Event
    gc=False,  # flat records of primitives: no reference cycles to track
)
if _Record.__struct_fields__ != Event._fields:
    raise RuntimeError("the fast decoder's fields must be Event's, in order")
_decode_record = msgspec.json.Decoder(_Record).decode
_astuple = msgspec.structs.astuple
_NUL = b"\\u0000"  # JSON's spelling of NUL, which from_bytes drops from texts


@dataclass
class DecodedBatch:
    table: pa.Table  # the events, in log order, with RAW_EVENT_SCHEMA
    malformed: list[tuple[bytes, MalformedEvent]]  # records that are not events, and why


def decode_batch(records: Sequence[bytes]) -> DecodedBatch:
    """Decode ``records`` (log order kept); records that are not events are set aside."""
    try:
        decoded = list(map(_decode_record, records))
    except msgspec.DecodeError:  # also what fails validation
        pass
    else:
        # column by column, without a tuple per record
        columns = [list(map(getter, decoded)) for getter in _GETTERS]
        if IMP_TYPES.issuperset(columns[_IMP_TYPE]):
            table = _table(columns)
            if not any(pc.any(pc.match_substring(table[i], "\x00")).as_py() for i in _TEXTS):
                return DecodedBatch(table=table, malformed=[])
    return _decode_one_by_one(records)


def _decode_one_by_one(records: Sequence[bytes]) -> DecodedBatch:
    """For a batch with a record the fast decoder does not take as it is: that record (and
    any like it) through ``Event.from_bytes``, the others still through the fast decoder."""
    rows: list[Event] = []
    malformed: list[tuple[bytes, MalformedEvent]] = []
    for raw in records:
        if _NUL not in raw:
            try:
                row = _astuple(_decode_record(raw))
            except msgspec.DecodeError:
                pass
            else:
                if row[_IMP_TYPE] in IMP_TYPES:
                    rows.append(Event._make(row))
                    continue
        try:
            rows.append(Event.from_bytes(raw))
        except MalformedEvent as exc:
            malformed.append((raw, exc))
    return DecodedBatch(table=events_to_table(rows), malformed=malformed)


def _table(columns: list[list[Any]]) -> pa.Table:
    arrays = [
        pa.array(column, type=pa.int64() if field.name == "ts" else field.type)
        for column, field in zip(columns, RAW_EVENT_SCHEMA, strict=True)
    ]
    arrays[_TS] = arrays[_TS].cast(RAW_EVENT_SCHEMA.field("ts").type)  # the same 64-bit values
    return pa.Table.from_arrays(arrays, schema=RAW_EVENT_SCHEMA)


_GETTERS = [operator.attrgetter(name) for name in Event._fields]
_TS = Event._fields.index("ts")
_IMP_TYPE = Event._fields.index("imp_type")
# from_bytes drops NUL characters from texts (no database text holds them)
_TEXTS = [i for i, f in enumerate(RAW_EVENT_SCHEMA) if f.type == pa.string()]
