"""A small in-memory ring of the latest hits per tracker, for the console's "live hits".

Bounded twice: ``per_tracker`` hits for each tracker, and rings for at most ``max_trackers``
trackers (the oldest rings are dropped first, an eighth at a time). Nothing here is durable or
billable; it is a debugging aid. Entries carry the privacy-reduced data already (truncated IP; no
IP, user agent or referrer when the visitor opted out; country and device type either way).
Adding a hit costs a dict lookup and a deque append: the collector's compact :class:`HitInfo`
tuple is kept and turned into a :class:`RecentHit` only when read.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from adtrack.collector.cache_eviction import make_room

__all__ = ["HitInfo", "RecentHit", "RecentHits", "default_hits", "recent_hits"]

_TRACKER_ID = operator.itemgetter(3)  # HitInfo -> tracker_id


class HitInfo(NamedTuple):
    """What the collector remembers of a stored event (besides the log record itself)."""

    event_id: str
    ts: int  # epoch microseconds, UTC
    imp_type: int
    tracker_id: int
    invalid_reason: str | None
    cachebuster: str | None
    media_cost_micros: int
    ancost_used: bool
    location: bytes | None  # the redirect target sent, if any
    user_agent: str | None
    referrer: str | None
    redirect_refused: str | None = None  # why a redir was not followed (a metric reason)
    country: str | None = None
    device_type: str | None = None


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
    redirect_refused: str | None = None  # why a redir was not followed (a metric reason)
    country: str | None = None
    device_type: str | None = None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1_000_000, tz=UTC)

    @classmethod
    def from_info(cls, info: HitInfo) -> RecentHit:
        return cls(
            info.ts,
            info.invalid_reason or "valid",
            info.media_cost_micros,
            info.ancost_used,
            None if info.location is None else info.location.decode("latin-1"),
            info.user_agent,
            info.referrer,
            info.event_id,
            info.redirect_refused,
            info.country,
            info.device_type,
        )


class RecentHits:
    __slots__ = ("_rings", "_per_tracker", "_max_trackers")

    def __init__(self, per_tracker: int = 50, max_trackers: int = 2_000) -> None:
        self._rings: dict[int, deque[RecentHit | HitInfo]] = {}
        self._per_tracker = per_tracker
        self._max_trackers = max_trackers

    def _ring(self, tracker_id: int) -> deque[RecentHit | HitInfo]:
        rings = self._rings
        ring = rings.get(tracker_id)
        if ring is None:
            make_room(rings, self._max_trackers)  # the oldest rings go
            ring = rings[tracker_id] = deque(maxlen=self._per_tracker)
        return ring

    def add(self, tracker_id: int, hit: RecentHit) -> None:
        self._ring(tracker_id).append(hit)

    def add_stored(self, infos: Sequence[HitInfo]) -> None:
        """Events just stored, oldest first."""
        if not infos:
            return
        tracker_id = infos[0].tracker_id
        if all(map(tracker_id.__eq__, map(_TRACKER_ID, infos))):
            # a batch of one tracker's hits (the usual case at volume): no Python loop per hit
            self._ring(tracker_id).extend(infos)
            return
        rings = self._rings
        for info in infos:
            ring = rings.get(info[3])  # tracker_id
            if ring is None:
                ring = self._ring(info.tracker_id)
            ring.append(info)

    def recent(self, tracker_id: int, limit: int = 20) -> list[RecentHit]:
        """The latest hits of a tracker, newest first."""
        ring = self._rings.get(tracker_id)
        if not ring or limit <= 0:
            return []
        items = list(ring)[-limit:]
        items.reverse()
        return [
            item if isinstance(item, RecentHit) else RecentHit.from_info(item) for item in items
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
