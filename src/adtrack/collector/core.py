"""The tracking endpoints' one implementation, independent of any HTTP server.

A transport (the bare collector server in ``http_server.py``, the ASGI app in ``asgi.py``) turns
a request into a :class:`RequestView`, calls :meth:`TrackingCore.handle`, makes the returned
event record durable (``EventLogWriter.append``) and only then sends the answer — or a 503 when
the store cannot take writes — and reports the outcome back with :meth:`TrackingCore.committed`
or :meth:`TrackingCore.failed`.

Behaviour (issue "Tracking endpoints"):

* ``/imptr`` records impression type 9 ("External Impression"); ``/clktrb`` and its alias
  ``/clktr`` record type 10 ("External Click"). The tracker is found by ``id``, else ``code``
  (among trackers of the endpoint's kind).
* Impressions answer a 1x1 GIF (``t=2``, the default), JavaScript (``t=1``), or a 302 to a valid
  ``redir`` (which wins over ``t``). Clicks answer a 302 to ``redir``, else to the tracker's
  landing page, else a small 200 page. A refused or ignored ``redir`` is as if absent.
* ``HEAD`` answers exactly like ``GET`` and records nothing. Other methods get 405.
* Unknown, deleted, inactive or wrong-kind trackers (and a missing id) still get their pixel or
  redirect, but nothing is recorded; they are counted in metrics by reason.
* Invalid traffic (bot, prefetch, duplicate click) is recorded with ``invalid`` set, never billed
  downstream.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any, Final

import orjson

from adtrack.collector.ancost import parse_ancost
from adtrack.collector.hits import RecentHit, RecentHits, default_hits
from adtrack.collector.invalid_traffic import BotDetector, DuplicateClicks, is_prefetch
from adtrack.collector.metrics import CollectorMetrics
from adtrack.collector.privacy import opted_out, truncate_ip
from adtrack.collector.query import RedirStatus, parse_query
from adtrack.collector.responses import Kind
from adtrack.collector.tracker_cache import CachedTracker, LookupKey, TrackerCache
from adtrack.domain.events import (
    INVALID_BOT,
    INVALID_DUPLICATE_CLICK,
    INVALID_PREFETCH,
    REJECT_INACTIVE_TRACKER,
    REJECT_MISSING_ID,
    REJECT_UNKNOWN_TRACKER,
    REJECT_WRONG_TYPE,
)
from adtrack.domain.model import ImpType

__all__ = [
    "TRACKING_PATHS",
    "VALID",
    "EventIds",
    "Outcome",
    "RequestView",
    "TrackingCore",
]

IMPRESSION: Final = int(ImpType.EXTERNAL_IMPRESSION)
CLICK: Final = int(ImpType.EXTERNAL_CLICK)
TRACKING_PATHS: Final = {"/imptr": IMPRESSION, "/clktrb": CLICK, "/clktr": CLICK}
_ENDPOINT_LABEL: Final = {"/imptr": "imptr", "/clktrb": "clktrb", "/clktr": "clktr"}
VALID: Final = "valid"

_MAX_UA = 1024
_MAX_REFERRER = 2048


class RequestView:
    """The parts of an HTTP request the tracking endpoints look at."""

    __slots__ = (
        "method",
        "path",
        "query",
        "user_agent",
        "referrer",
        "purpose",
        "sec_gpc",
        "dnt",
        "client_ip",
        "forwarded_for",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: bytes,
        *,
        user_agent: bytes | None = None,
        referrer: bytes | None = None,
        purpose: bytes | None = None,
        sec_gpc: bytes | None = None,
        dnt: bytes | None = None,
        client_ip: str | None = None,
        forwarded_for: bytes | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.user_agent = user_agent
        self.referrer = referrer
        self.purpose = purpose  # Purpose / Sec-Purpose / X-Purpose / X-Moz, joined
        self.sec_gpc = sec_gpc
        self.dnt = dnt
        self.client_ip = client_ip
        self.forwarded_for = forwarded_for


class Outcome:
    """What to answer, and what (if anything) must be durable before answering."""

    __slots__ = ("kind", "location", "head_only", "record", "event", "lookup", "dedup_key")

    def __init__(
        self,
        kind: Kind,
        location: bytes | None = None,
        head_only: bool = False,
        record: bytes | None = None,
        event: dict[str, Any] | None = None,
        lookup: LookupKey | None = None,
        dedup_key: tuple[int, str] | None = None,
    ) -> None:
        self.kind = kind
        self.location = location  # for Kind.REDIRECT
        self.head_only = head_only
        self.record = record  # the event log record to append before answering
        self.event = event  # the same event as a dict (for metrics and live hits)
        self.lookup = lookup  # set: look this key up in the store, then handle again
        self.dedup_key = dedup_key  # a remembered click, forgotten again if the append fails


class EventIds:
    """Cheap unique event ids: a random per-process prefix and a counter (``<12 hex>-<hex>``)."""

    __slots__ = ("_prefix", "_next")

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex() + "-"
        self._next = 0

    def __call__(self) -> str:
        self._next += 1
        return f"{self._prefix}{self._next:x}"


def _text(raw: bytes | None, limit: int) -> str | None:
    if not raw:
        return None
    return raw[:limit].decode("utf-8", "replace")


def _parse_id(raw: str) -> int | None:
    raw = raw.strip()
    if not raw or len(raw) > 12 or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


class TrackingCore:
    """Attributes, prices and judges tracking requests; builds the answer and the event."""

    def __init__(
        self,
        cache: TrackerCache,
        *,
        honour_privacy_signals: bool = True,
        trust_forwarded_for: bool = False,
        metrics: CollectorMetrics | None = None,
        hits: RecentHits | None = None,
        bots: BotDetector | None = None,
        duplicates: DuplicateClicks | None = None,
        event_ids: EventIds | None = None,
    ) -> None:
        self.cache = cache
        self.honour_privacy_signals = honour_privacy_signals
        self.trust_forwarded_for = trust_forwarded_for
        self.metrics = metrics or CollectorMetrics()
        self.hits = hits if hits is not None else default_hits()
        self.bots = bots or BotDetector()
        self.duplicates = duplicates or DuplicateClicks()
        self.next_event_id = event_ids or EventIds()
        self.metrics.gauge(
            "adtrack_collector_trackers_cached",
            "Trackers in the collector's cache.",
            lambda: float(len(cache)),
        )
        self.metrics.gauge(
            "adtrack_collector_catalogue_version",
            "catalogue_version the cache was loaded at.",
            lambda: float(cache.version or 0),
        )

    # ---- the one implementation ----------------------------------------------------------------

    def handle(self, req: RequestView, *, allow_lookup: bool = True) -> Outcome:
        """Decide the answer and the event for one request (no I/O).

        When the tracker is not in the cache and may exist in the store, the outcome has
        ``lookup`` set: the transport awaits ``cache.lookup(outcome.lookup)`` and calls
        ``handle(req, allow_lookup=False)`` again.
        """
        imp_type = TRACKING_PATHS.get(req.path)
        if imp_type is None:
            return Outcome(Kind.NOT_FOUND)
        metrics = self.metrics
        if allow_lookup:
            endpoint = _ENDPOINT_LABEL[req.path]
            metrics.requests[endpoint] = metrics.requests.get(endpoint, 0) + 1
        method = req.method
        if method == "GET":
            head_only = False
        elif method == "HEAD":
            head_only = True
        else:
            return Outcome(Kind.METHOD_NOT_ALLOWED)

        query = parse_query(req.query)
        if allow_lookup and query.redir_status not in (RedirStatus.OK, RedirStatus.ABSENT):
            metrics.redir[query.redir_status] = metrics.redir.get(query.redir_status, 0) + 1

        # ---- which tracker
        tracker: CachedTracker | None = None
        reject: str | None = None
        cache = self.cache
        if query.id is not None:
            tracker_id = _parse_id(query.id)
            if tracker_id is None:
                reject = REJECT_UNKNOWN_TRACKER
            else:
                tracker = cache.by_id(tracker_id)
                if tracker is None:
                    key: LookupKey = ("id", tracker_id)
                    if allow_lookup and cache.may_lookup(key):
                        return Outcome(Kind.NOT_FOUND, lookup=key)
                    reject = REJECT_UNKNOWN_TRACKER
        elif query.code:
            tracker = cache.by_code(imp_type, query.code)
            if tracker is None:
                key = (imp_type, query.code)
                if allow_lookup and cache.may_lookup(key):
                    return Outcome(Kind.NOT_FOUND, lookup=key)
                reject = REJECT_UNKNOWN_TRACKER
        else:
            reject = REJECT_MISSING_ID
        if tracker is not None:
            if tracker.imp_type != imp_type:
                reject = REJECT_WRONG_TYPE
            elif not tracker.active:
                reject = REJECT_INACTIVE_TRACKER

        # ---- the answer (the same whether or not anything is recorded)
        location = query.redirect
        if location is not None:
            kind = Kind.REDIRECT
        elif imp_type == IMPRESSION:
            kind = Kind.SCRIPT if query.t == "1" else Kind.PIXEL
        elif tracker is not None and tracker.landing_page is not None:
            kind, location = Kind.REDIRECT, tracker.landing_page
        else:
            kind = Kind.CLICK_PAGE

        if head_only:
            return Outcome(kind, location, True)
        if reject is not None:
            metrics.rejected[reject] = metrics.rejected.get(reject, 0) + 1
            if tracker is not None:
                self.hits.add(
                    tracker.id,
                    RecentHit(
                        time.time_ns() // 1000,
                        "rejected:" + reject,
                        0,
                        False,
                        None if location is None else location.decode("latin-1"),
                        _text(req.user_agent, _MAX_UA),
                        _text(req.referrer, _MAX_REFERRER),
                    ),
                )
            return Outcome(kind, location)
        assert tracker is not None

        # ---- price
        ancost_micros: int | None = None
        if query.ancost:
            ancost_micros = parse_ancost(query.ancost)
            if ancost_micros is None:
                metrics.invalid_ancost += 1
        now_us = time.time_ns() // 1000
        priced = tracker.plan.price(imp_type, now_us, ancost_micros)

        # ---- judge
        user_agent = _text(req.user_agent, _MAX_UA)
        dedup_key: tuple[int, str] | None = None
        if self.bots.is_bot(user_agent):
            invalid_reason: str | None = INVALID_BOT
        elif is_prefetch(req.purpose):
            invalid_reason = INVALID_PREFETCH
        elif imp_type == CLICK and query.cachebuster:
            if self.duplicates.check_and_remember(tracker.id, query.cachebuster):
                invalid_reason = INVALID_DUPLICATE_CLICK
            else:
                invalid_reason = None
                dedup_key = (tracker.id, query.cachebuster)
        else:
            invalid_reason = None

        # ---- what we keep about the visitor
        if self.honour_privacy_signals and opted_out(req.sec_gpc, req.dnt):
            ip = referrer = None
            user_agent = None
        else:
            client_ip = req.client_ip
            if self.trust_forwarded_for and req.forwarded_for:
                client_ip = req.forwarded_for.rpartition(b",")[2].strip().decode("latin-1")
            ip = truncate_ip(client_ip)
            referrer = _text(req.referrer, _MAX_REFERRER)

        event = {
            "event_id": self.next_event_id(),
            "ts": now_us,
            "imp_type": imp_type,
            "tracker_id": tracker.id,
            "advertiser_id": tracker.advertiser_id,
            "line_item_id": tracker.line_item_id,
            "publisher_id": tracker.publisher_id,
            "placement_id": tracker.placement_id,
            "payment_rule_id": priced.payment_rule_id,
            "media_cost_micros": priced.media_cost_micros,
            "booked_revenue_micros": priced.booked_revenue_micros,
            "revenue_type": priced.revenue_type,
            "ancost_used": priced.ancost_used,
            "cachebuster": query.cachebuster,
            "ip": ip,
            "user_agent": user_agent,
            "referrer": referrer,
            "invalid": invalid_reason is not None,
            "invalid_reason": invalid_reason,
            "redirect_url": None if location is None else location.decode("latin-1"),
        }
        return Outcome(kind, location, False, orjson.dumps(event), event, None, dedup_key)

    # ---- after the store answered ----------------------------------------------------------------

    def committed(self, outcomes: Iterable[Outcome]) -> None:
        """The events of these outcomes are durable and their answers go out."""
        events = self.metrics.events
        hits = self.hits
        for outcome in outcomes:
            event = outcome.event
            if event is None:
                continue
            verdict = event["invalid_reason"] or VALID
            key = (event["imp_type"], verdict)
            events[key] = events.get(key, 0) + 1
            hits.add(
                event["tracker_id"],
                RecentHit(
                    event["ts"],
                    verdict,
                    event["media_cost_micros"],
                    event["ancost_used"],
                    event["redirect_url"],
                    event["user_agent"],
                    event["referrer"],
                    event["event_id"],
                ),
            )

    def failed(self, outcomes: Iterable[Outcome]) -> None:
        """The store refused these events: they are answered 503 and must leave no trace."""
        duplicates = self.duplicates
        count = 0
        for outcome in outcomes:
            if outcome.record is None:
                continue
            count += 1
            if outcome.dedup_key is not None:
                duplicates.forget(*outcome.dedup_key)
        self.metrics.unavailable += count
