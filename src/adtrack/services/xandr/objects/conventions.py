"""The original platform's field conventions, shared by both directions of the mapping: its
services (``XandrKind``), ids, amounts, time zones and timestamps, and the refusal that names
its field.

Time: the platform writes timestamps as ``YYYY-MM-DD HH:MM:SS`` in UTC unless noted
(``last_modified``); a line item's ``start_date``/``end_date`` are in its ``timezone`` (the
advertiser's when it has none) and a payment rule's in its own ``timezone`` (default
``EST5EDT``, the platform's default). Its end dates are inclusive to the second (an end of
``2024-05-04 23:59:59`` runs through May 4th); adtrack's are exclusive, so an end date maps to
the instant one second later, and back (``ONE_SECOND``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adtrack.domain.errors import ValidationError
from adtrack.domain.model import TrackerType
from adtrack.domain.money import MoneyError, from_micros, to_micros
from adtrack.domain.parsing import parse_int, parse_local_datetime
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import MONEY_MAX_MICROS, ORIGINAL_ID_MAX

__all__ = [
    "DEFAULT_TIMEZONE",
    "ONE_SECOND",
    "OUTPUT_TIMEZONE",
    "TIMESTAMP_FORMAT",
    "XandrKind",
    "XandrRefusal",
    "decimal_out",
    "format_timestamp",
    "parse_timestamp",
    "read_id",
    "read_micros",
    "read_zone",
    "tracker_kind",
]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# The platform's default time zone for members, advertisers, line items and payment rules.
DEFAULT_TIMEZONE = "EST5EDT"
# The JSON adtrack writes gives its dates in UTC (what it stores) and says so.
OUTPUT_TIMEZONE = "UTC"
ONE_SECOND = timedelta(seconds=1)


class XandrKind(StrEnum):
    """The platform's services, by the path and object key they use."""

    ADVERTISER = "advertiser"
    LINE_ITEM = "line-item"
    PUBLISHER = "publisher"
    PLACEMENT = "placement"
    PAYMENT_RULE = "payment-rule"
    IMPTRACKER = "imptracker"
    CLICKTRACKER = "clicktracker"

    @property
    def plural(self) -> str:
        """The key of a list in a response (``"imptrackers"``, ``"payment-rules"``)."""
        return self.value + "s"

    @property
    def tracker_type(self) -> TrackerType | None:
        return _TRACKER_TYPES.get(self)


_TRACKER_TYPES = {
    XandrKind.IMPTRACKER: TrackerType.IMPRESSION,
    XandrKind.CLICKTRACKER: TrackerType.CLICK,
}


def tracker_kind(tracker_type: TrackerType) -> XandrKind:
    """The platform's service for a tracker type."""
    return (
        XandrKind.IMPTRACKER if tracker_type is TrackerType.IMPRESSION else XandrKind.CLICKTRACKER
    )


class XandrRefusal(ValidationError):
    """An object that cannot become a catalogue object; ``field`` is the platform's field
    (``publisher.id``, ``revenue_value``...)."""


def parse_timestamp(value: object, field: str, tz: tzinfo = UTC) -> datetime | None:
    """A platform timestamp (``YYYY-MM-DD HH:MM:SS``, or a date) read in ``tz``, as aware
    UTC; None or blank is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise XandrRefusal(field, "must be a timestamp (YYYY-MM-DD HH:MM:SS)")
    try:
        return parse_local_datetime(value, field, tz=tz).astimezone(UTC)
    except ValidationError as exc:
        raise XandrRefusal(field, exc.message) from None


def format_timestamp(value: datetime | None, tz: tzinfo = UTC) -> str | None:
    """An instant as the platform writes it, in ``tz``."""
    if value is None:
        return None
    return as_utc(value).astimezone(tz).strftime(TIMESTAMP_FORMAT)


def read_zone(name: object, field: str) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise XandrRefusal(field, "must be a time zone name (e.g. EST5EDT)")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise XandrRefusal(field, f"is not a known time zone ({name[:60]})") from None


def read_id(value: object, field: str) -> int:
    """An id on the platform (up to 64 bits: adtrack keeps it where its own ids reach)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise XandrRefusal(field, "must be a positive integer id")
    try:
        return parse_int(value, field, low=1, high=ORIGINAL_ID_MAX)
    except ValidationError as exc:
        raise XandrRefusal(field, exc.message) from None


def read_micros(value: object, field: str) -> int:
    """A decimal amount (number or decimal text) in micros, 0..999999.999999."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise XandrRefusal(field, "must be a number")
    try:
        micros = to_micros(value.strip() if isinstance(value, str) else value)
    except MoneyError as exc:
        raise XandrRefusal(field, str(exc)) from None
    if micros < 0:
        raise XandrRefusal(field, "must not be negative")
    if micros > MONEY_MAX_MICROS:
        raise XandrRefusal(field, "must be at most 999999.999999")
    return micros


def decimal_out(micros: int) -> float:
    # The platform's JSON has plain numbers (``"cost_cpm": 0.4``). An amount has at most 12
    # significant digits (999999.999999), so the float's shortest repr is that exact decimal.
    return float(from_micros(micros))
