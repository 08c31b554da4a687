"""The pure fold of events into hourly rollup deltas (no I/O).

A rollup row is keyed by (hour UTC, imp_type, tracker, advertiser, line item, publisher,
placement or 0, payment rule or 0). Valid events add to ``imps`` (imp_type 9) or ``clicks``
(imp_type 10) and to media cost and booked revenue; invalid events add only to
``invalid_imps`` / ``invalid_clicks`` and, by reason, to the invalid-traffic rollup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from adtrack.domain.model import ImpType

__all__ = [
    "EPOCH",
    "HOUR_MICROS",
    "Counts",
    "EventFacts",
    "InvalidKey",
    "RollupDelta",
    "RollupKey",
    "UNSPECIFIED_REASON",
    "fold",
    "hour_start",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MICROS = 3_600_000_000
UNSPECIFIED_REASON = "unspecified"  # an invalid event that carries no reason

_IMPRESSION = int(ImpType.EXTERNAL_IMPRESSION)
_CLICK = int(ImpType.EXTERNAL_CLICK)


class EventFacts(Protocol):
    """What the fold reads of an event (``domain.events.Event`` fits)."""

    @property
    def ts(self) -> int: ...
    @property
    def imp_type(self) -> int: ...
    @property
    def tracker_id(self) -> int: ...
    @property
    def advertiser_id(self) -> int: ...
    @property
    def line_item_id(self) -> int: ...
    @property
    def publisher_id(self) -> int: ...
    @property
    def placement_id(self) -> int | None: ...
    @property
    def payment_rule_id(self) -> int | None: ...
    @property
    def media_cost_micros(self) -> int: ...
    @property
    def booked_revenue_micros(self) -> int: ...
    @property
    def invalid(self) -> bool: ...
    @property
    def invalid_reason(self) -> str | None: ...


def hour_start(hour_index: int) -> datetime:
    """The UTC start of hour number ``hour_index`` since the epoch."""
    return EPOCH + timedelta(hours=hour_index)


# Keys are plain tuples (hashed and compared in C) and hold the hour as an index (epoch hours):
# the SQL sink turns each distinct one into a datetime once.
class RollupKey(NamedTuple):
    hour: int
    imp_type: int
    tracker_id: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int  # 0 = none
    payment_rule_id: int  # 0 = none


class InvalidKey(NamedTuple):
    hour: int
    imp_type: int
    tracker_id: int
    reason: str


@dataclass(slots=True)
class Counts:
    imps: int = 0
    clicks: int = 0
    invalid_imps: int = 0
    invalid_clicks: int = 0
    media_cost_micros: int = 0
    booked_revenue_micros: int = 0


@dataclass
class RollupDelta:
    """What a set of events adds to the rollup tables."""

    rows: dict[RollupKey, Counts] = field(default_factory=dict)
    invalid: dict[InvalidKey, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.invalid)


def fold(events: Iterable[EventFacts], into: RollupDelta | None = None) -> RollupDelta:
    """Add ``events`` to ``into`` (a new delta by default) and return it."""
    delta = into if into is not None else RollupDelta()
    rows = delta.rows
    invalid = delta.invalid
    for event in events:
        hour = event.ts // HOUR_MICROS
        # A plain tuple equals (and hashes like) the named one: build a RollupKey only for
        # keys not seen yet, which is what keeps this loop cheap.
        key = (
            hour,
            event.imp_type,
            event.tracker_id,
            event.advertiser_id,
            event.line_item_id,
            event.publisher_id,
            event.placement_id or 0,
            event.payment_rule_id or 0,
        )
        counts = rows.get(key)  # type: ignore[call-overload]
        if counts is None:
            counts = rows[RollupKey._make(key)] = Counts()
        is_click = event.imp_type == _CLICK
        if event.invalid:
            if is_click:
                counts.invalid_clicks += 1
            else:
                counts.invalid_imps += 1
            reason_key = InvalidKey(
                hour, event.imp_type, event.tracker_id, event.invalid_reason or UNSPECIFIED_REASON
            )
            invalid[reason_key] = invalid.get(reason_key, 0) + 1  # rare: invalid traffic
        else:
            if is_click:
                counts.clicks += 1
            else:
                counts.imps += 1
            counts.media_cost_micros += event.media_cost_micros
            counts.booked_revenue_micros += event.booked_revenue_micros
    return delta
