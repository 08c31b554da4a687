"""A tracked event as it travels through the event log.

The collector builds one per accepted request; the aggregator rolls them up. The wire form (one
per log record) is a JSON array: the record format's number, then the fields below in order
(``[2,"<event_id>",<ts>,...]``; ``ts`` is epoch microseconds, UTC). Positions rather than keys
halve the record (the keys were most of its bytes), and a flat array of primitives lets the
collector write it from pre-encoded pieces without building an object on the hot path. Records
of earlier layouts are still read, the fields they lack being None: format 1 (the array without
the audience and viewability fields) and, before it, a JSON object keyed by field name.

:class:`Event` is a named tuple whose fields are also the columns of the raw-event archive
(``aggregator/event_batch.py``). :meth:`Event.from_bytes` holds the rules for log records: the
aggregator's fast batch decoder takes only records it would keep unchanged, and leaves every
other record to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from adtrack.domain.model import ImpType

# Why an event is kept but not billed (invalid-traffic verdicts).
INVALID_BOT = "bot"
INVALID_NON_BROWSER = "non_browser"
INVALID_DATACENTRE = "datacentre"
INVALID_PREFETCH = "prefetch"
INVALID_DUPLICATE_CLICK = "duplicate_click"
INVALID_REASONS = (
    INVALID_BOT,
    INVALID_NON_BROWSER,
    INVALID_DATACENTRE,
    INVALID_PREFETCH,
    INVALID_DUPLICATE_CLICK,
)

# Why a request was answered but recorded nothing billable (rejected, counted in metrics only).
REJECT_UNKNOWN_TRACKER = "unknown_tracker"
REJECT_INACTIVE_TRACKER = "inactive_tracker"
REJECT_MISSING_ID = "missing_id"
REJECT_WRONG_TYPE = "wrong_tracker_type"

# What a device is, from its user agent (``device_type``).
DEVICE_TYPES = ("desktop", "mobile", "tablet", "ctv", "other")
# A viewability beacon's state (``view_state``): the impression could be measured, or it was
# viewable (which implies measured).
VIEW_MEASURED = "measured"
VIEW_VIEWABLE = "viewable"
VIEW_STATES = (VIEW_MEASURED, VIEW_VIEWABLE)

RECORD_FORMAT = 2  # the first element of a record; a new layout takes a new number
MAX_EVENT_ID_LENGTH = 40
# The times an event may carry (epoch microseconds): the days that dates can hold (years 1 to
# 9999, a day of margin at each end), so that its hour and day always exist. A record outside
# them is not an event: it would otherwise stop the aggregator at the first date it computed.
TS_MIN = -62_135_596_800_000_000 + 86_400_000_000  # 0001-01-02T00:00Z
TS_MAX = 253_402_214_400_000_000 - 1  # just before 9999-12-31T00:00Z
# The longest text a field holds (None: unbounded); the ``events`` table's columns are as wide.
TEXT_LIMITS: Mapping[str, int | None] = {
    "revenue_type": 8,
    "cachebuster": 255,
    "ip": 64,
    "country": 2,
    "user_agent": None,
    "device_type": 16,
    "os": 64,
    "browser": 64,
    "referrer": None,
    "invalid_reason": 32,
    "redirect_url": None,
    "view_state": 16,
    "impression_event_id": MAX_EVENT_ID_LENGTH,
}


# The kinds of fields (besides event_id and the texts of TEXT_LIMITS), by name.
REQUIRED_INT_FIELDS = (
    "ts",
    "imp_type",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "media_cost_micros",
    "booked_revenue_micros",
)
OPTIONAL_INT_FIELDS = ("placement_id", "payment_rule_id")
FLAG_FIELDS = ("ancost_used", "invalid")  # read as booleans
IMP_TYPES = frozenset(int(t) for t in ImpType)


class MalformedEvent(ValueError):
    """A log record that is not a valid event."""


# Any: a record as orjson decodes it, before the checks below give each value its type (the
# checks test the exact types, so the values stay as decoded until then).
DecodedRecord = Mapping[str, Any]
DecodedValues = list[Any]


class Event(NamedTuple):
    event_id: str
    ts: int  # epoch microseconds, UTC
    imp_type: int  # 9 External Impression, 10 External Click
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
    ip: str | None  # truncated (see collector/privacy.py)
    country: str | None  # ISO 3166-1 alpha-2, from the full address before truncation
    user_agent: str | None
    device_type: str | None  # one of DEVICE_TYPES
    os: str | None  # family
    browser: str | None  # family
    referrer: str | None
    invalid: bool
    invalid_reason: str | None
    redirect_url: str | None
    view_state: str | None  # a viewability beacon's state (VIEW_STATES); None for a hit
    impression_event_id: str | None  # a beacon's impression

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1_000_000, tz=UTC)

    def to_bytes(self) -> bytes:
        return orjson.dumps((RECORD_FORMAT, *self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Event:
        """Decode one log record (either layout); raises :class:`MalformedEvent` if it is not
        an event."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedEvent(f"not JSON: {exc}") from None
        if type(data) is list:
            layout = _LAYOUTS.get(data[0]) if data and type(data[0]) is int else None
            if layout is None:
                raise MalformedEvent(f"not a record of format {RECORD_FORMAT} or earlier")
            if len(data) != len(layout) + 1:
                raise MalformedEvent(f"a record has {len(layout)} fields, not {len(data) - 1}")
            return cls.from_dict(dict(zip(layout, data[1:], strict=True)))
        if type(data) is not dict:
            raise MalformedEvent("not a JSON array or object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: DecodedRecord) -> Event:
        """Check a record's values; raises :class:`MalformedEvent` naming the bad field.

        A reader must never get stuck on one record, so what can be kept is: text longer than
        its field allows is cut (and NUL characters, which no database text holds, dropped),
        a missing ``revenue_type`` is ``"none"``, and the flags are read as booleans.
        """
        values: DecodedValues = list(map(data.get, _FIELDS))
        event_id = values[0]
        if (
            type(event_id) is not str
            or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH
            or "\x00" in event_id
        ):
            raise MalformedEvent(f"event_id must be 1-{MAX_EVENT_ID_LENGTH} characters")
        # Fast path first (every value of the expected type and size), details only on failure.
        ints = [values[i] for i in _REQUIRED_INTS]
        if not (
            all(type(v) is int for v in ints)
            and min(ints) >= -_INT64
            and max(ints) < _INT64
            and values[_IMP_TYPE] in IMP_TYPES
            and TS_MIN <= values[_TS] <= TS_MAX
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
                raise MalformedEvent(f"{_FIELDS[i]} must be text")
            if (width is not None and len(value) > width) or "\x00" in value:
                values[i] = value.replace("\x00", "")[:width]
        if values[_REVENUE_TYPE] is None:
            values[_REVENUE_TYPE] = "none"
        for i in _BOOLS:
            values[i] = bool(values[i])
        return cls._make(values)


_FIELDS: tuple[str, ...] = Event._fields
_ADDED_IN_FORMAT_2 = (
    "country",
    "device_type",
    "os",
    "browser",
    "view_state",
    "impression_event_id",
)
# The fields of each record format, in the order its arrays hold them.
_LAYOUTS: Mapping[int, tuple[str, ...]] = {
    1: tuple(name for name in _FIELDS if name not in _ADDED_IN_FORMAT_2),
    RECORD_FORMAT: _FIELDS,
}
_INDEX = {name: i for i, name in enumerate(_FIELDS)}
_IMP_TYPE = _INDEX["imp_type"]
_TS = _INDEX["ts"]
_REVENUE_TYPE = _INDEX["revenue_type"]
_REQUIRED_INTS = tuple(_INDEX[name] for name in REQUIRED_INT_FIELDS)
_OPTIONAL_INTS = tuple(_INDEX[name] for name in OPTIONAL_INT_FIELDS)
_TEXTS = tuple((_INDEX[name], width) for name, width in TEXT_LIMITS.items())
_BOOLS = tuple(_INDEX[name] for name in FLAG_FIELDS)
_INT64 = 1 << 63


def _explain_ints(values: DecodedValues) -> None:
    for i in _REQUIRED_INTS:
        _check_int(values[i], i)
    if not TS_MIN <= values[_TS] <= TS_MAX:
        raise MalformedEvent(f"ts {values[_TS]} is not a time between the years 1 and 9999")
    raise MalformedEvent(f"imp_type {values[_IMP_TYPE]!r} is not 9 or 10")


def _check_int(value: object, index: int) -> None:
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise MalformedEvent(f"{_FIELDS[index]} must be an integer, not {value!r}")
