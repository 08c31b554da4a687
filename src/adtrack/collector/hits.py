"""A small in-memory ring of the latest hits per tracker, for the console's "live hits".

Bounded twice: ``per_tracker`` hits for each tracker, and only the ``max_trackers`` most recently
hit trackers are kept. Nothing here is durable or billable; it is a debugging aid. Entries
already carry the privacy-reduced data (no IP, and no UA/referrer when the visitor opted out).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime

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


class RecentHits:
    __slots__ = ("_rings", "_per_tracker", "_max_trackers")

    def __init__(self, per_tracker: int = 50, max_trackers: int = 2_000) -> None:
        self._rings: OrderedDict[int, deque[RecentHit]] = OrderedDict()
        self._per_tracker = per_tracker
        self._max_trackers = max_trackers

    def add(self, tracker_id: int, hit: RecentHit) -> None:
        rings = self._rings
        ring = rings.get(tracker_id)
        if ring is None:
            ring = rings[tracker_id] = deque(maxlen=self._per_tracker)
            if len(rings) > self._max_trackers:
                rings.popitem(last=False)
        else:
            rings.move_to_end(tracker_id)
        ring.append(hit)

    def recent(self, tracker_id: int, limit: int = 20) -> list[RecentHit]:
        """The latest hits of a tracker, newest first."""
        ring = self._rings.get(tracker_id)
        if not ring or limit <= 0:
            return []
        items = list(ring)
        items.reverse()
        return items[:limit]

    def clear(self) -> None:
        self._rings.clear()


_DEFAULT = RecentHits()


def default_hits() -> RecentHits:
    """The process-wide ring the collector writes to unless given another one."""
    return _DEFAULT


def recent_hits(tracker_id: int, limit: int = 20) -> list[RecentHit]:
    """The latest hits of a tracker seen by the collector(s) in this process, newest first."""
    return _DEFAULT.recent(tracker_id, limit)
