"""A plausible event for tests to start from: change what a test is about with ``_replace``."""

from __future__ import annotations

import json
from typing import Any

import orjson

from adtrack.domain.events import RECORD_FORMAT, Event

# A valid impression (imp_type 9) of tracker 1 of advertiser/line item/publisher 1, priced by no
# rule, at 2026-01-01T00:00:00Z; money in micros.
AN_IMPRESSION = Event(
    event_id="event-1",
    ts=1_767_225_600_000_000,
    imp_type=9,
    tracker_id=1,
    advertiser_id=1,
    line_item_id=1,
    publisher_id=1,
    placement_id=None,
    payment_rule_id=None,
    media_cost_micros=1_000,
    booked_revenue_micros=2_500,
    revenue_type="cpm",
    ancost_used=False,
    cachebuster="123",
    ip=None,
    country=None,
    user_agent=None,
    device_type=None,
    os=None,
    browser=None,
    referrer=None,
    invalid=False,
    invalid_reason=None,
    redirect_url=None,
    view_state=None,
    impression_event_id=None,
)


def record_fields(record: bytes) -> dict[str, Any]:
    """A log record's fields by name, exactly as written (``Event.from_bytes`` would also cut,
    coerce and fill in): the record format's number, then every field of Event in order."""
    values = orjson.loads(record)
    assert type(values) is list and values[0] == RECORD_FORMAT, record[:40]
    return dict(zip(Event._fields, values[1:], strict=True))


def record_with(event: Event, **fields: Any) -> bytes:
    """``event``'s record with some fields set to anything, valid or not (integers of any
    size too)."""
    values = [RECORD_FORMAT, *event]
    for name, value in fields.items():
        values[1 + Event._fields.index(name)] = value
    return json.dumps(values).encode()
