"""Turning event-log records (JSON bytes) back into checked :class:`Event` values.

The aggregator must never get stuck on one bad record, so a record that is not a well-formed
event is refused here (:class:`MalformedRecord`) and skipped by the caller, which logs it; and
text longer than its column is cut to fit rather than failing the whole batch in the database.
"""

from __future__ import annotations

from typing import Any

import orjson

from adtrack.domain.events import Event
from adtrack.domain.model import ImpType

__all__ = ["MalformedRecord", "decode_event"]

_IMP_TYPES = frozenset(int(t) for t in ImpType)
_REQUIRED_INTS = (
    "ts",
    "imp_type",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "media_cost_micros",
    "booked_revenue_micros",
)
_OPTIONAL_INTS = ("placement_id", "payment_rule_id")
# Text fields and the width of their column (None: unbounded).
_TEXTS: tuple[tuple[str, int | None], ...] = (
    ("revenue_type", 8),
    ("cachebuster", 255),
    ("ip", 64),
    ("user_agent", None),
    ("referrer", None),
    ("invalid_reason", 32),
    ("redirect_url", None),
)
_MAX_ID_LENGTH = 40
_INT64 = 1 << 63


class MalformedRecord(ValueError):
    """A log record that is not a valid event."""


def _int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise MalformedRecord(f"{name} must be an integer, not {value!r}")
    return value


def decode_event(raw: bytes) -> Event:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRecord(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRecord("not a JSON object")
    event_id = data.get("event_id")
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= _MAX_ID_LENGTH
        or "\x00" in event_id
    ):
        raise MalformedRecord(f"event_id must be 1-{_MAX_ID_LENGTH} characters")
    fields: dict[str, Any] = {"event_id": event_id}
    for name in _REQUIRED_INTS:
        fields[name] = _int(data, name)
    if fields["imp_type"] not in _IMP_TYPES:
        raise MalformedRecord(f"imp_type {fields['imp_type']} is not 9 or 10")
    for name in _OPTIONAL_INTS:
        fields[name] = None if data.get(name) is None else _int(data, name)
    for name, width in _TEXTS:
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise MalformedRecord(f"{name} must be text")
            if "\x00" in value:  # PostgreSQL text cannot hold NUL
                value = value.replace("\x00", "")
            if width is not None and len(value) > width:
                value = value[:width]
        fields[name] = value
    if fields["revenue_type"] is None:
        fields["revenue_type"] = "none"
    for name in ("ancost_used", "invalid"):
        fields[name] = bool(data.get(name))
    return Event(**fields)
