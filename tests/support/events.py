"""A plausible event for tests to start from: change what a test is about with ``_replace``."""

from __future__ import annotations

from adtrack.domain.events import Event

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
    user_agent=None,
    referrer=None,
    invalid=False,
    invalid_reason=None,
    redirect_url=None,
)
