"""Turning event-log records (JSON bytes) back into checked event values.

The aggregator must never get stuck on one bad record, so a record that is not a well-formed
event is refused here (:class:`MalformedRecord`) and skipped by the caller, which logs it; and
text longer than its column is cut to fit rather than failing the whole batch in the database.

Decoding is on the aggregator's per-event path, so it yields :class:`EventRecord`, a named
tuple with the fields of :class:`adtrack.domain.events.Event` in the same order (which is also
the column order of the ``events`` table): cheap to build, and usable wherever an ``Event`` is
read by attribute.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from adtrack.domain.events import Event
from adtrack.domain.model import ImpType

__all__ = ["EventRecord", "MalformedRecord", "decode_event"]


class EventRecord(NamedTuple):
    event_id: str
    ts: int  # epoch microseconds, UTC
    imp_type: int
    tracker_id: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    payment_rule_id: int | None
    media_cost_micros: int
    booked_revenue_micros: int
    revenue_type: str
    ancost_used: bool
    cachebuster: str | None
    ip: str | None
    user_agent: str | None
    referrer: str | None
    invalid: bool
    invalid_reason: str | None
    redirect_url: str | None


_FIELDS: tuple[str, ...] = EventRecord._fields
if tuple(Event.__dataclass_fields__) != _FIELDS:
    raise RuntimeError("EventRecord must list Event's fields in Event's order")

_IMP_TYPES = frozenset(int(t) for t in ImpType)
_INDEX = {name: i for i, name in enumerate(_FIELDS)}
_REQUIRED_INTS = tuple(
    _INDEX[name]
    for name in (
        "ts",
        "imp_type",
        "tracker_id",
        "advertiser_id",
        "line_item_id",
        "publisher_id",
        "media_cost_micros",
        "booked_revenue_micros",
    )
)
_OPTIONAL_INTS = (_INDEX["placement_id"], _INDEX["payment_rule_id"])
# Text fields and the width of their column (None: unbounded).
_TEXTS: tuple[tuple[int, int | None], ...] = (
    (_INDEX["revenue_type"], 8),
    (_INDEX["cachebuster"], 255),
    (_INDEX["ip"], 64),
    (_INDEX["user_agent"], None),
    (_INDEX["referrer"], None),
    (_INDEX["invalid_reason"], 32),
    (_INDEX["redirect_url"], None),
)
_BOOLS = (_INDEX["ancost_used"], _INDEX["invalid"])
_MAX_ID_LENGTH = 40
_INT64 = 1 << 63


class MalformedRecord(ValueError):
    """A log record that is not a valid event."""


def decode_event(raw: bytes) -> EventRecord:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRecord(f"not JSON: {exc}") from None
    if type(data) is not dict:
        raise MalformedRecord("not a JSON object")
    values: list[Any] = list(map(data.get, _FIELDS))
    event_id = values[0]
    if type(event_id) is not str or not 0 < len(event_id) <= _MAX_ID_LENGTH or "\x00" in event_id:
        raise MalformedRecord(f"event_id must be 1-{_MAX_ID_LENGTH} characters")
    # Fast path first (every value of the expected type and size), details only on failure.
    ints = [values[i] for i in _REQUIRED_INTS]
    if not (
        all(type(v) is int for v in ints)
        and min(ints) >= -_INT64
        and max(ints) < _INT64
        and values[2] in _IMP_TYPES
    ):
        _explain_ints(values)
    for i in _OPTIONAL_INTS:
        if values[i] is not None:
            _check_int(values[i], i)
    for i, width in _TEXTS:
        value = values[i]
        if value is None:
            continue
        if type(value) is not str:
            raise MalformedRecord(f"{_FIELDS[i]} must be text")
        if (width is not None and len(value) > width) or "\x00" in value:
            values[i] = value.replace("\x00", "")[:width]  # PostgreSQL text cannot hold NUL
    if values[11] is None:  # revenue_type
        values[11] = "none"
    for i in _BOOLS:
        values[i] = bool(values[i])
    return EventRecord._make(values)


def _explain_ints(values: list[Any]) -> None:
    for i in _REQUIRED_INTS:
        _check_int(values[i], i)
    raise MalformedRecord(f"imp_type {values[2]!r} is not 9 or 10")


def _check_int(value: object, index: int) -> None:
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise MalformedRecord(f"{_FIELDS[index]} must be an integer, not {value!r}")
