"""Live hits: the latest requests the collector saw for a tracker, made readable.

The collector keeps a small in-memory ring per tracker (``adtrack.collector.hits``). The console
reads ``WebState.recent_hits`` (set by ``create_app``): the ring of its own process merged with
those of the collector processes, read through their control channels
(:class:`MergedHits`). Nothing here is durable or billable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from starlette.requests import Request

from adtrack.collector.hits import RecentHit
from adtrack.domain.money import format_micros
from adtrack.web.state import web_state

__all__ = ["HitRow", "HitSource", "MergedHits", "hit_rows", "redirect_note", "verdict_of"]

LIVE_HITS_LIMIT = 25


class HitSource(Protocol):
    def recent(self, tracker_id: int, limit: int = 20) -> list[RecentHit]: ...


class MergedHits:
    """The latest hits over several sources (this process's ring, collector processes),
    newest first. Reading may block on the collectors' channels: call it from a sync endpoint
    (FastAPI runs those in a worker thread), never on the event loop."""

    def __init__(self, sources: Sequence[HitSource]) -> None:
        self._sources = list(sources)

    def recent(self, tracker_id: int, limit: int = 20) -> list[RecentHit]:
        hits = [hit for source in self._sources for hit in source.recent(tracker_id, limit)]
        hits.sort(key=lambda hit: hit.ts, reverse=True)
        return hits[:limit]


@dataclass(frozen=True)
class HitRow:
    time: str
    verdict: str  # "counted", "invalid: bot", "rejected: inactive tracker"
    verdict_class: str  # valid | invalid | rejected
    cost: str
    ancost_used: bool
    redirect_url: str
    redirect_note: str  # why a redir was not followed ("" when it was, or there was none)
    user_agent: str
    referrer: str
    visitor: str  # country and device type ("US · mobile"), as far as known


# the collector's reasons (adtrack_collector_redir_ignored_total) that need more than a label
_REDIRECT_REASONS = {
    "userinfo": "a user name in the target",
    "not_allowed_domain": "not one of the advertiser's landing domains",
    "refused": "not an http(s) URL with a host",
    "not_last": "not the last parameter",
}


def redirect_note(reason: str | None) -> str:
    """Why the collector did not follow a ``redir``, for people."""
    if not reason:
        return ""
    return "redir not followed: " + _REDIRECT_REASONS.get(reason, reason.replace("_", " "))


def verdict_of(raw: str) -> tuple[str, str]:
    """The collector's verdict as text for people, and its CSS class."""
    if raw == "valid":
        return "counted", "valid"
    if raw.startswith("rejected:"):
        return "rejected: " + raw.removeprefix("rejected:").replace("_", " "), "rejected"
    return "invalid: " + raw.replace("_", " "), "invalid"


def hit_source(request: Request) -> HitSource:
    return web_state(request).recent_hits


def hit_rows(request: Request, tracker_id: int, zone: ZoneInfo) -> list[HitRow]:
    rows = []
    for hit in hit_source(request).recent(tracker_id, LIVE_HITS_LIMIT):
        verdict, css = verdict_of(hit.verdict)
        rows.append(
            HitRow(
                time=hit.timestamp.astimezone(zone).strftime("%H:%M:%S"),
                verdict=verdict,
                verdict_class=css,
                cost=format_micros(hit.media_cost_micros),
                ancost_used=hit.ancost_used,
                redirect_url=hit.redirect_url or "",
                redirect_note=redirect_note(hit.redirect_refused),
                user_agent=hit.user_agent or "",
                referrer=hit.referrer or "",
                visitor=" · ".join(filter(None, (hit.country, hit.device_type))),
            )
        )
    return rows
