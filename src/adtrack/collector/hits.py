"""A small in-memory ring of the latest hits per tracker, for the console's "live hits".

Bounded twice: ``per_tracker`` hits for each tracker, and rings for at most ``max_trackers``
trackers (the oldest ring is dropped first). Nothing here is durable or billable; it is a
debugging aid. Entries carry the privacy-reduced data already (truncated IP; no IP, user agent or
referrer when the visitor opted out). Adding an event costs a dict lookup and a deque append: the
event dict itself is kept and turned into a :class:`RecentHit` only when read.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["RecentHit", "RecentHits", "default_hits", "recent_hits"]


@dataclass(frozen=True, slots=True)
class RecentHit:
    ts: int  # epoch microseconds, UTC
    verdict: str  # "valid", an invalid reason ("bot"...), or "rejected:<reason>"
    media_cost_micros: int
    ancost_used: bool
    redirect_url: str | None
    user_agent: str | None
    referrer: str | None
    event_id: str | None = None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1_000_000, tz=UTC)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> RecentHit:
        return cls(
            event["ts"],
            event["invalid_reason"] or "valid",
            event["media_cost_micros"],
            event["ancost_used"],
            event["redirect_url"],
            event["user_agent"],
            event["referrer"],
            event["event_id"],
        )


class RecentHits:
    __slots__ = ("_rings", "_per_tracker", "_max_trackers")

    def __init__(self, per_tracker: int = 50, max_trackers: int = 2_000) -> None:
        self._rings: dict[int, deque[RecentHit | dict[str, Any]]] = {}
        self._per_tracker = per_tracker
        self._max_trackers = max_trackers

    def _ring(self, tracker_id: int) -> deque[RecentHit | dict[str, Any]]:
        rings = self._rings
        ring = rings.get(tracker_id)
        if ring is None:
            if len(rings) >= self._max_trackers:
                del rings[next(iter(rings))]  # the oldest ring
            ring = rings[tracker_id] = deque(maxlen=self._per_tracker)
        return ring

    def add(self, tracker_id: int, hit: RecentHit) -> None:
        self._ring(tracker_id).append(hit)

    def add_event(self, event: dict[str, Any]) -> None:
        """A stored event (the dict written to the event log)."""
        tracker_id: int = event["tracker_id"]
        ring = self._rings.get(tracker_id)
        if ring is None:
            ring = self._ring(tracker_id)
        ring.append(event)

    def recent(self, tracker_id: int, limit: int = 20) -> list[RecentHit]:
        """The latest hits of a tracker, newest first."""
        ring = self._rings.get(tracker_id)
        if not ring or limit <= 0:
            return []
        items = list(ring)[-limit:]
        items.reverse()
        return [
            item if isinstance(item, RecentHit) else RecentHit.from_event(item) for item in items
        ]

    def clear(self) -> None:
        self._rings.clear()


_DEFAULT = RecentHits()


def default_hits() -> RecentHits:
    """The process-wide ring the collector writes to unless given another one."""
    return _DEFAULT


def recent_hits(tracker_id: int, limit: int = 20) -> list[RecentHit]:
    """The latest hits of a tracker seen by the collector(s) in this process, newest first."""
    return _DEFAULT.recent(tracker_id, limit)
