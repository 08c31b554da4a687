"""A tracked event as it travels through the event log.

The collector builds one per accepted request; the aggregator rolls them up. The wire form (one
per log record) is a JSON array: the record format's number, then the fields below in order
(``[3,"<event_id>",<ts>,...]``; ``ts`` is epoch microseconds, UTC). Positions rather than keys
halve the record (the keys were most of its bytes), and a flat array of primitives lets the
collector write it from pre-encoded pieces without building an object on the hot path. Records
of earlier layouts are still read, the fields they lack being None: format 2 (the array without
the conversion fields), format 1 (without the audience and viewability fields either) and,
before it, a JSON object keyed by field name. The collector still writes impressions and clicks
in format 2 (:data:`HIT_RECORD_FORMAT`): their conversion fields are always None, and leaving
them out keeps their records, and the hot path that writes them, as they were;
:meth:`Event.to_bytes` does the same for any event without conversion fields.

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

# Why a conversion is not attributed (``attribution_reason``; ``attribution`` is then None).
# Decided by the collector from the conversion alone:
# no click token (``sspdata``) was given, and no conversion cookie
CONVERSION_NO_TOKEN = "no_token"
CONVERSION_MALFORMED = "malformed"  # the token is not one (see domain/click_tokens.py)
CONVERSION_FORGED = "forged"  # the token does not authenticate
CONVERSION_EXPIRED = "expired"  # older than the longest post-click window, or from the future
# older than the pixel's post-click (post-view: the impression's) window
CONVERSION_OUT_OF_WINDOW = "out_of_window"
CONVERSION_WRONG_ADVERTISER = "wrong_advertiser"  # a click of another advertiser's tracker
# the pixel's trigger type takes no such conversion (``view``: no post-click; ``click``: no
# post-view)
CONVERSION_TRIGGER_TYPE = "trigger_type"
# ... and by the aggregator, from what it counted before (state shared by every collector):
CONVERSION_DUPLICATE_ORDER = "duplicate_order"  # the pixel counted this order_id already
CONVERSION_TOO_SOON = "too_soon"  # min_minutes_per_conversion since the click's last one
CONVERSION_REASONS = (
    CONVERSION_NO_TOKEN,
    CONVERSION_MALFORMED,
    CONVERSION_FORGED,
    CONVERSION_EXPIRED,
    CONVERSION_OUT_OF_WINDOW,
    CONVERSION_WRONG_ADVERTISER,
    CONVERSION_TRIGGER_TYPE,
    CONVERSION_DUPLICATE_ORDER,
    CONVERSION_TOO_SOON,
)
# How a conversion is attributed (``attribution``).
POST_CLICK = "post_click"
POST_VIEW = "post_view"
ATTRIBUTIONS = (POST_CLICK, POST_VIEW)
MAX_ORDER_ID_LENGTH = 100

RECORD_FORMAT = 3  # the first element of a record; a new layout takes a new number
HIT_RECORD_FORMAT = 2  # what the collector writes impressions and clicks in (see above)
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
    "order_id": MAX_ORDER_ID_LENGTH,
    "attribution": 16,
    "attribution_reason": 32,
    "source_event_id": MAX_EVENT_ID_LENGTH,
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
OPTIONAL_INT_FIELDS = ("placement_id", "payment_rule_id", "conversion_pixel_id", "source_ts")
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
    imp_type: int  # 9 External Impression, 10 External Click, 11 Conversion (ImpType)
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
    # a conversion's (None for every other event): its pixel, the advertiser's order id, how it
    # is attributed (ATTRIBUTIONS) or why not (CONVERSION_REASONS), and the click it is
    # attributed to (or whose token it came with): its event id and time (epoch microseconds)
    conversion_pixel_id: int | None = None
    order_id: str | None = None
    attribution: str | None = None
    attribution_reason: str | None = None
    source_event_id: str | None = None
    source_ts: int | None = None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1_000_000, tz=UTC)

    def to_bytes(self) -> bytes:
        """The log record: format 2 for an event without conversion fields (what the collector
        writes for a hit, and what the aggregator decodes fastest), else format 3."""
        if self[_FORMAT_3_START:] == _NO_CONVERSION_FIELDS:
            return orjson.dumps((HIT_RECORD_FORMAT, *self[:_FORMAT_3_START]))
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
# (the last fields of Event)
ADDED_IN_FORMAT_3 = (
    "conversion_pixel_id",
    "order_id",
    "attribution",
    "attribution_reason",
    "source_event_id",
    "source_ts",
)
_FORMAT_2 = _FIELDS[: -len(ADDED_IN_FORMAT_3)]
_FORMAT_3_START = len(_FORMAT_2)
_NO_CONVERSION_FIELDS = (None,) * len(ADDED_IN_FORMAT_3)
# The fields of each record format, in the order its arrays hold them.
_LAYOUTS: Mapping[int, tuple[str, ...]] = {
    1: tuple(name for name in _FORMAT_2 if name not in _ADDED_IN_FORMAT_2),
    HIT_RECORD_FORMAT: _FORMAT_2,
    RECORD_FORMAT: _FIELDS,
}
if _FIELDS[len(_FORMAT_2) :] != ADDED_IN_FORMAT_3:
    raise RuntimeError("the fields of record format 3 must be Event's last ones")
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
    raise MalformedEvent(f"imp_type {values[_IMP_TYPE]!r} is not 9, 10 or 11")


def _check_int(value: object, index: int) -> None:
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise MalformedEvent(f"{_FIELDS[index]} must be an integer, not {value!r}")
