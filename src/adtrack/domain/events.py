"""A tracked event as it travels through the event log.

The collector builds one per accepted request; the aggregator rolls them up. The wire form is a
compact JSON object (one per log record) whose keys are the field names below; ``ts`` is epoch
microseconds (UTC). Keeping the record a flat dict of primitives lets the collector write it
without building a dataclass on the hot path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

# Why an event is kept but not billed (invalid-traffic verdicts).
INVALID_BOT = "bot"
INVALID_PREFETCH = "prefetch"
INVALID_DUPLICATE_CLICK = "duplicate_click"

# Why a request was answered but recorded nothing billable (rejected, counted in metrics only).
REJECT_UNKNOWN_TRACKER = "unknown_tracker"
REJECT_INACTIVE_TRACKER = "inactive_tracker"
REJECT_MISSING_ID = "missing_id"
REJECT_WRONG_TYPE = "wrong_tracker_type"


@dataclass(frozen=True, slots=True)
class Event:
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
    ip: str | None
    user_agent: str | None
    referrer: str | None
    invalid: bool
    invalid_reason: str | None
    redirect_url: str | None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1_000_000, tz=UTC)

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        values: dict[str, Any] = {name: data.get(name) for name in cls.__slots__}
        return cls(**values)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Event:
        return cls.from_dict(orjson.loads(raw))
