"""The tracking endpoints' one implementation, independent of any HTTP server.

A transport (the bare collector server in ``http_protocol.py``, the ASGI app in ``asgi.py``) hands
:meth:`TrackingCore.handle` a request view (anything with the attributes of
:class:`RequestView`), makes the returned event record durable (``EventLogWriter.append``) and
only then sends the answer — or a 503 when the store cannot take writes — and reports the
outcome back with :meth:`TrackingCore.committed` or :meth:`TrackingCore.failed`.

Behaviour (issue "Tracking endpoints"):

* ``/imptr`` records impression type 9 ("External Impression"); ``/clktrb`` and its alias
  ``/clktr`` record type 10 ("External Click"). The tracker is found by ``id``, else ``code``
  (among trackers of the endpoint's kind).
* Impressions answer a 1x1 GIF (``t=2``, the default), JavaScript (``t=1``), or a 302 to a valid
  ``redir`` (which wins over ``t``). Clicks answer a 302 to ``redir``, else to the tracker's
  landing page, else a small 200 page. A refused or ignored ``redir`` is as if absent.
* ``HEAD`` answers exactly like ``GET`` and records nothing. Other methods get 405.
* ``/sspx`` and ``/px`` record a conversion (``conversions.py``): their own path, decided before
  anything of the impressions' and clicks'.
* Unknown, deleted, inactive or wrong-kind trackers (and a missing id) record nothing; they are
  counted in metrics by reason. Impressions still get their pixel; an inactive click tracker
  sends the visitor to its landing page; a click with an unknown or wrong-kind id is answered
  404, one without id or code 400.
* Whether a ``redir`` is followed is the redirect policy's call (``redirect_policy.py``): by
  default only for an active tracker of the endpoint's kind; a refused one is as if absent and
  counted by reason.
* Invalid traffic (bot, non-browser, data-centre address, prefetch, duplicate click) is recorded
  with ``invalid`` set and its reason, never billed downstream (``invalid_traffic.py``).
* A recorded click whose redirect target has the ``${SSP_DATA}`` / ``[SSP_DATA]`` macro, or whose
  tracker names a parameter for it, is sent there with its click token
  (``click_token_targets.py``, ``domain/click_tokens.py``); the event keeps the target as
  configured. An answer that records no click removes the macro.
* Viewability (``viewability.py``): a valid ``t=1`` impression is answered a script holding a
  signed token of it, which loads the measurement script; ``/viewtr`` takes its beacons. A
  beacon with a good token is recorded as an event of the impression (``view_state`` and
  ``impression_event_id`` set); any other is counted by reason and answered 204 all the same.

This runs for every hit, so it is written for speed: plain locals, few objects, no per-request
framework. Measured with the benchmark in ``bench/tracking.py``.
"""

from __future__ import annotations

import itertools
import operator
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple, Protocol

import orjson

from adtrack.collector.ancost import parse_ancost
from adtrack.collector.click_token_targets import token_parts, without_token
from adtrack.collector.conversions import (
    CONVERSION,
    CONVERSION_PATHS,
    ConversionPostbacks,
)
from adtrack.collector.datacentre import DatacentreAddresses, datacentre_ranges
from adtrack.collector.hits import HitInfo, RecentHit, RecentHits, default_hits
from adtrack.collector.invalid_traffic import (
    BotDetector,
    DuplicateClicks,
    is_prefetch,
    usable_cachebuster,
)
from adtrack.collector.metrics import CollectorMetrics
from adtrack.collector.privacy import opted_out
from adtrack.collector.query import MAX_TEXT, RedirStatus, parameter_text, parse_query
from adtrack.collector.records import (
    HIT_END,
    INVALID_FRAGMENTS,
    NO_REFERRER,
    NO_USER_AGENT,
    RecordFragments,
)
from adtrack.collector.redirect_policy import NO_OVERRIDE, TRACKERS, check_policy, refusal
from adtrack.collector.responses import AnswerKind
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.collector.tracker_tables import CachedTracker, LookupKey
from adtrack.collector.viewability import (
    VIEW_BEACON_PATH,
    Viewability,
    beacon_record,
    measuring_script,
    parse_beacon_query,
)
from adtrack.collector.visitor import VisitorFragments
from adtrack.domain.click_tokens import ClickTokens
from adtrack.domain.conversion_tags import BROWSER_PIXEL_PATH
from adtrack.domain.events import (
    HIT_RECORD_FORMAT,
    INVALID_DATACENTRE,
    INVALID_DUPLICATE_CLICK,
    INVALID_PREFETCH,
    REJECT_INACTIVE_TRACKER,
    REJECT_MISSING_ID,
    REJECT_UNKNOWN_TRACKER,
    REJECT_WRONG_TYPE,
)
from adtrack.domain.model import ImpType
from adtrack.domain.pricing import PricedEvent
from adtrack.domain.view_tokens import ViewToken, beacon_window_open

__all__ = [
    "HEADER_FIELDS",
    "REQUEST_FIELDS",
    "TRACKING_PATHS",
    "EventIds",
    "Outcome",
    "RequestLike",
    "RequestView",
    "TagPlan",
    "TrackingCore",
]

IMPRESSION: Final = int(ImpType.EXTERNAL_IMPRESSION)
CLICK: Final = int(ImpType.EXTERNAL_CLICK)
TRACKING_PATHS: Final = {"/imptr": IMPRESSION, "/clktrb": CLICK, "/clktr": CLICK}

# enum members as plain module constants (attribute access on an Enum class is not free)
_PIXEL: Final = AnswerKind.PIXEL
_SCRIPT: Final = AnswerKind.SCRIPT
_REDIRECT: Final = AnswerKind.REDIRECT
_TOKEN_REDIRECT: Final = AnswerKind.TOKEN_REDIRECT
_CLICK_PAGE: Final = AnswerKind.CLICK_PAGE
_NOT_FOUND: Final = AnswerKind.NOT_FOUND
_BAD_REQUEST: Final = AnswerKind.BAD_REQUEST
_METHOD_NOT_ALLOWED: Final = AnswerKind.METHOD_NOT_ALLOWED
_NO_CONTENT: Final = AnswerKind.NO_CONTENT
_REDIR_OK: Final = RedirStatus.OK
_REDIR_ABSENT: Final = RedirStatus.ABSENT
_dumps = orjson.dumps
_VERDICT_KEY = operator.itemgetter(2, 4)  # HitInfo -> (imp_type, invalid_reason): metrics key
_EVENT_OF = operator.attrgetter("event")  # Outcome -> HitInfo | None
_join = b"".join
_RECORD_START: Final = b'[%d,"' % HIT_RECORD_FORMAT  # then the event id
_time_ns = time.time_ns


class RequestLike(Protocol):
    """What :meth:`TrackingCore.handle` reads from a request (header values are raw bytes)."""

    method: str
    path: str
    query: bytes
    user_agent: bytes | None
    referrer: bytes | None
    purpose: bytes | None  # Purpose / Sec-Purpose / X-Purpose / X-Moz, joined
    sec_gpc: bytes | None
    dnt: bytes | None
    client_ip: str | None
    forwarded_for: bytes | None
    cookie: bytes | None  # read by /px alone (conversion cookies)


# The attributes of a RequestLike, in RequestView's parameter order.
REQUEST_FIELDS: Final = (
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
    "cookie",
)
_request_fields = operator.attrgetter(*REQUEST_FIELDS)

# The request headers the tracking endpoints read: lower-case name -> RequestLike attribute
# (repeated or several of them are joined with ",").
HEADER_FIELDS: Final[dict[bytes, str]] = {
    b"user-agent": "user_agent",
    b"referer": "referrer",
    b"purpose": "purpose",
    b"sec-purpose": "purpose",
    b"x-purpose": "purpose",
    b"x-moz": "purpose",
    b"sec-gpc": "sec_gpc",
    b"dnt": "dnt",
    b"x-forwarded-for": "forwarded_for",
    b"cookie": "cookie",
}


class RequestView:
    """A plain :class:`RequestLike`."""

    __slots__ = REQUEST_FIELDS

    def __init__(
        self,
        method: str,
        path: str,
        query: bytes,
        user_agent: bytes | None = None,
        referrer: bytes | None = None,
        purpose: bytes | None = None,
        sec_gpc: bytes | None = None,
        dnt: bytes | None = None,
        client_ip: str | None = None,
        forwarded_for: bytes | None = None,
        cookie: bytes | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.user_agent = user_agent
        self.referrer = referrer
        self.purpose = purpose
        self.sec_gpc = sec_gpc
        self.dnt = dnt
        self.client_ip = client_ip
        self.forwarded_for = forwarded_for
        self.cookie = cookie

    @classmethod
    def copy_of(cls, req: RequestLike) -> RequestView:
        return cls(*_request_fields(req))


class Outcome(NamedTuple):
    """What to answer, and what (if anything) must be durable before answering.

    The answer is the same for ``GET`` and ``HEAD`` (the transport leaves out the body of a
    ``HEAD``); only a ``GET`` can carry a record.
    """

    kind: int  # a responses.AnswerKind
    location: bytes | None = None  # for AnswerKind.REDIRECT
    record: bytes | None = None  # the event log record to append before answering
    event: HitInfo | None = None  # what metrics and live hits keep of the event
    lookup: LookupKey | None = None  # set: look this key up in the store, then handle again
    body: bytes | None = None  # the answer's body when it is this request's own (t=1 script)
    view_state: str | None = None  # a viewability beacon's state (it has no HitInfo)
    # a conversion's metrics key (imp type, invalid reason or None): it has no HitInfo either
    verdict: tuple[int, str | None] | None = None
    # a ``Set-Cookie`` header line (with its CRLF) to send with the answer: a conversion cookie
    set_cookie: bytes | None = None


# What a TagPlan holds before its first hit: never used as a price (its window is empty).
_NOT_PRICED_YET: Final = PricedEvent(None, 0, 0, "none", False)

# Builds an Outcome without the Python-level ``__new__`` of a NamedTuple (hot path).
_new_tuple = tuple.__new__


class EventIds:
    """Cheap unique event ids: a random per-process prefix and a counter (``<12 hex>-<n>``)."""

    __slots__ = ("prefix", "next")

    def __init__(self) -> None:
        self.prefix = os.urandom(6).hex() + "-"
        # one C-level call per id: count -> str -> prefix + str
        self.next: Callable[[], str] = map(
            self.prefix.__add__, map(str, itertools.count(1))
        ).__next__

    def __call__(self) -> str:
        return self.next()


class TagPlan:
    """What one tag resolves to: everything about a hit that its query decides, except the
    cachebuster.

    A tag in the wild sends the same query on every hit but for its cachebuster
    (``id=12&cachebuster=<random>&ancost=0.35&redir=https://...``), so :meth:`TrackingCore.handle`
    splits the query at the cachebuster and remembers the plan of the rest (the *tag key*): the
    tracker, the answer and its safe Location, the ancost in micros, the metrics to count, and
    pre-encoded pieces of the record. A hit of a known tag then skips parsing, the tracker lookup
    and the redirect checks, which are most of the work.

    The split is made only where it cannot change the meaning of the rest: ``cachebuster=`` must
    start a parameter, and no ``redir`` (an un-encoded target runs to the end of the query and
    could contain it) or other ``cachebuster`` may come before it. Other queries take the general
    path every time. Plans hold a tracker-cache generation and are rebuilt when it moves (a full
    reload) or when their tracker was retired (replaced by a catalogue change); the memo is
    bounded (cleared when full).
    """

    __slots__ = (
        "generation",
        "tracker",
        "kind",
        "location",
        "ancost_micros",
        "ancost_invalid",
        "redir_metric",
        "redirect_fragment",
        "cachebuster",
        "priced",
        "priced_from",
        "priced_until",
        "record_head",
        "token_parts",
        "token_ids",
        "_fragments",
    )

    def __init__(
        self,
        generation: int,
        tracker: CachedTracker,
        kind: int,
        location: bytes | None,
        ancost_micros: int | None,
        ancost_invalid: bool,
        redir_metric: str | None,
        fragments: RecordFragments,
        cachebuster: str | None,
        token_parts: tuple[bytes, ...] | None = None,
    ) -> None:
        self.generation = generation
        self.tracker = tracker
        self.kind = kind
        self.location = location
        self.ancost_micros = ancost_micros
        self.ancost_invalid = ancost_invalid  # an ancost was given but is not valid: count it
        self.redir_metric = redir_metric  # a redir status to count (refused, not last), or None
        self._fragments = fragments
        self.redirect_fragment = fragments.redirect(location) + HIT_END  # the record's last piece
        self.cachebuster = cachebuster  # of the query it was made from (general path only)
        # the price and the record's pieces up to the cachebuster, kept for as long as the
        # price stays the same: [priced_from, priced_until) in epoch micros (empty until priced)
        self.priced = _NOT_PRICED_YET
        self.priced_from = self.priced_until = 0
        self.record_head = b""
        # where the click token goes in ``location`` (None: it takes none), and the click's ids
        # as the token packs them (its payment rule depends on the price: kept with it)
        self.token_parts = token_parts
        self.token_ids = b""

    def reprice(self, imp_type: int, now_us: int) -> PricedEvent:
        """Price a hit at ``now_us`` afresh, and keep the price for as long as it holds."""
        priced, self.priced_from, self.priced_until = self.tracker.plan.price_window(
            imp_type, now_us, self.ancost_micros
        )
        if priced is not self.priced:
            self.record_head = _join(
                (self.tracker.record_fragment, self._fragments.priced(priced), b",")
            )
            if self.token_parts is not None or self.tracker.cookie_parts is not None:
                tracker = self.tracker
                self.token_ids = ClickTokens.click_ids(
                    tracker.id,
                    tracker.advertiser_id,
                    tracker.line_item_id,
                    tracker.publisher_id,
                    tracker.placement_id,
                    priced.payment_rule_id,
                )
            self.priced = priced
        return priced


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
        datacentres: DatacentreAddresses | None = None,
        event_ids: EventIds | None = None,
        max_tag_plans: int = 4096,
        redirect_policy: str = TRACKERS,
        viewability: Viewability | None = None,
        visitor: VisitorFragments | None = None,
        click_tokens: ClickTokens | None = None,
    ) -> None:
        self.cache = cache
        # (processes of one deployment share the secret: bootstrap.build_view_tokens)
        self.viewability = viewability or Viewability.ephemeral()
        # the server's redirect policy; an advertiser may override it (see redirect_policy.py)
        self.redirect_policy = check_policy(redirect_policy)
        self.honour_privacy_signals = honour_privacy_signals
        self.trust_forwarded_for = trust_forwarded_for
        self.metrics = metrics or CollectorMetrics()
        self.hits = hits if hits is not None else default_hits()
        self.bots = bots or BotDetector()
        self.duplicates = duplicates or DuplicateClicks()
        self.datacentres = datacentres or DatacentreAddresses(datacentre_ranges())
        self.next_event_id = (event_ids or EventIds()).next
        # None only where no token is ever read back (tests): a secret of this process alone
        tokens = click_tokens or ClickTokens(secrets.token_bytes(32))
        self.make_click_token = tokens.make
        self.make_impression_token = tokens.make_impression
        self.conversions = ConversionPostbacks(cache, tokens, self.metrics.rejected)
        self.fragments = RecordFragments()
        # the visitor's pieces of the record: per address (country) and per user agent (device);
        # the hot path calls its caches' bound .get (the dicts are only ever cleared in place)
        self.visitor = visitor if visitor is not None else VisitorFragments()
        self._known_address = self.visitor.addresses.get
        self._known_device = self.visitor.user_agents.get
        self._tag_plans: dict[tuple[int, bytes, bytes, bytes], TagPlan] = {}
        self._max_tag_plans = max_tag_plans  # 0: every hit takes the general path
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
        self.metrics.gauge(
            "adtrack_collector_catalogue_full_loads",
            "Full loads of the tracker cache since start (start-up, a collector too far behind "
            "the change log, the hourly safety net).",
            lambda: float(cache.reloads),
        )
        self.metrics.gauge(
            "adtrack_collector_catalogue_incremental_applies",
            "Catalogue changes applied from the change log since start (one per poll that "
            "found changes).",
            lambda: float(cache.incremental_applies),
        )

    # ---- the one implementation ----

    def handle(
        self,
        req: RequestLike,
        allow_lookup: bool = True,
        looked_up: CachedTracker | None = None,
    ) -> Outcome:
        """Decide the answer and the event for one request (no I/O).

        When the tracker is not in the cache and may exist in the store, the outcome has
        ``lookup`` set: the transport awaits ``found = cache.lookup(outcome.lookup)`` and calls
        ``handle(req, False, found)`` again. The cache may decline to keep what the lookup found
        (a catalogue change was applied meanwhile), so the request is decided with ``found``
        itself: a good hit of a tracker just created is never answered as unknown.
        """
        path = req.path
        imp_type = TRACKING_PATHS.get(path)
        if imp_type is None:
            if path in CONVERSION_PATHS:
                return self._conversion(req)
            if path == VIEW_BEACON_PATH:
                return self._beacon(req)
            return Outcome(_NOT_FOUND)
        metrics = self.metrics
        if allow_lookup:
            requests = metrics.requests
            requests[path] = requests.get(path, 0) + 1
        method = req.method
        if method != "GET" and method != "HEAD":
            return Outcome(_METHOD_NOT_ALLOWED)

        # ---- the tag: the query apart from its cachebuster, resolved once (see TagPlan)
        query = req.query
        plan: TagPlan | None = None
        key: tuple[int, bytes, bytes, bytes] | None = None
        cachebuster: str | None = None
        head, found, rest = query.partition(b"cachebuster=")
        # (no plan from a looked-up copy: it may not be the cache's, whose changes retire plans)
        if found and method == "GET" and self._max_tag_plans and looked_up is None:
            raw_cachebuster, amp, tail = rest.partition(b"&")
            key = (imp_type, head, amp, tail)
            plan = self._tag_plans.get(key)
            if plan is not None:
                # (its head passed the checks below when the plan was stored)
                if plan.generation != self.cache.generation or plan.tracker.retired:
                    plan = None
            elif not (
                (not head or head[-1] == 38)  # "cachebuster=" starts a parameter (38: "&")
                # (bytes.find, not "in": bytes.__contains__ first tries the argument as an int
                # and formats a TypeError it then drops, which costs more than the search)
                and head.find(b"redir=") < 0
                and head.find(b"cachebuster") < 0
            ):
                key = None  # not a query this split may be made in: the general path
            if key is not None:
                # (the same rule as the query parser's for any parameter value; "%" looked for
                # in the text, where "in" is cheap)
                cachebuster = raw_cachebuster.decode("utf-8", "replace")
                if "%" in cachebuster or len(raw_cachebuster) > MAX_TEXT:
                    cachebuster = parameter_text(raw_cachebuster)
        if plan is None:
            resolved = self._resolve(req, imp_type, allow_lookup, looked_up)
            if type(resolved) is not TagPlan:
                return resolved  # type: ignore[return-value]
            plan = resolved
            if key is None:
                cachebuster = plan.cachebuster
            else:
                plans = self._tag_plans
                if len(plans) >= self._max_tag_plans:
                    plans.clear()
                plans[key] = plan
        elif allow_lookup and plan.redir_metric is not None:
            metrics.redir[plan.redir_metric] = metrics.redir.get(plan.redir_metric, 0) + 1
        assert plan is not None
        tracker = plan.tracker
        location = plan.location
        if plan.ancost_invalid:
            metrics.invalid_ancost += 1

        # ---- price
        now_us = _time_ns() // 1000
        if plan.priced_from <= now_us < plan.priced_until:
            priced = plan.priced
        else:
            priced = plan.reprice(imp_type, now_us)
        record_head = plan.record_head

        # ---- judge (on the full client address, before it is truncated below)
        client_ip = self._client_ip(req)
        # (the user agent's verdict, bot or non_browser, comes first: its own reason)
        user_agent, invalid_reason, ua_fragment = self.bots.classify(req.user_agent)
        if invalid_reason is None:
            invalid_reason = self._visit_verdict(client_ip, req.purpose)
            if (
                invalid_reason is None
                and imp_type == CLICK
                and cachebuster
                and self.duplicates.check_and_remember(tracker.id, cachebuster)
            ):
                invalid_reason = INVALID_DUPLICATE_CLICK

        # ---- what we keep about the visitor: its address's and agent's record pieces, each
        # cached (visitor.py), with and without what a privacy signal leaves out
        address = self._known_address(client_ip)
        if address is None:
            address = self.visitor.address(client_ip)
        raw_user_agent = req.user_agent
        device = self._known_device(raw_user_agent)
        if device is None:
            device = self.visitor.device(raw_user_agent, user_agent)
        opted = (
            (req.sec_gpc is not None or req.dnt is not None)
            and self.honour_privacy_signals
            and opted_out(req.sec_gpc, req.dnt)
        )
        if opted:
            # country and device type stay: coarse, and what audience reports count
            referrer = user_agent = None
            ip_fragment, device_fragment = address[1], device[1]
            ua_fragment, referrer_fragment = NO_USER_AGENT, NO_REFERRER
        else:
            ip_fragment, device_fragment = address[0], device[0]
            raw_referrer = req.referrer
            if raw_referrer:
                known_referrer = self.fragments.referrer_cache.get(raw_referrer)
                if known_referrer is None:
                    known_referrer = self.fragments.referrer(raw_referrer)
                referrer, referrer_fragment = known_referrer
            else:
                referrer, referrer_fragment = None, NO_REFERRER

        # ---- the record: Event's JSON array, from pre-encoded pieces (see records.py)
        event_id = self.next_event_id()
        raw_event_id = event_id.encode()
        kind = plan.kind
        token_parts = plan.token_parts
        click_token: bytes | None = None
        if token_parts is not None:  # the redirect target takes the click's token
            kind = _TOKEN_REDIRECT
            click_token = self.make_click_token(
                now_us, invalid_reason is not None, plan.token_ids, raw_event_id
            )
            location = click_token.join(token_parts)
        record = _join(
            (
                _RECORD_START,
                raw_event_id,
                b'",',
                str(now_us).encode(),
                record_head,
                _dumps(cachebuster),
                ip_fragment,  # ip, country
                ua_fragment,  # user_agent
                device_fragment,  # device_type, os, browser
                referrer_fragment,
                INVALID_FRAGMENTS[invalid_reason],
                plan.redirect_fragment,
            )
        )
        info = _new_tuple(
            HitInfo,
            (
                event_id,
                now_us,
                imp_type,
                tracker.id,
                invalid_reason,
                cachebuster,
                priced[1],
                priced[4],
                location,
                user_agent,
                referrer,
                plan.redir_metric,
                address[2],  # country
                device[2][0],  # device_type
            ),
        )
        set_cookie: bytes | None = None
        cookie_parts = tracker.cookie_parts
        if (
            cookie_parts is not None
            and invalid_reason is None
            and not opted_out(req.sec_gpc, req.dnt)  # (whether or not the record honours it)
        ):
            # the advertiser's conversion cookie: this valid hit's token (conversion_cookies.py)
            if imp_type != CLICK:
                token = self.make_impression_token(now_us, plan.token_ids, raw_event_id)
            elif click_token is None:
                token = self.make_click_token(now_us, False, plan.token_ids, raw_event_id)
            else:
                token = click_token
            set_cookie = token.join(cookie_parts)
        body: bytes | None = None
        if kind == _SCRIPT and invalid_reason is None:
            # the measurement script's token (invalid impressions are never measured)
            info_of_device = device[2]
            body = measuring_script(
                self.viewability.signer.sign(
                    ViewToken(
                        event_id,
                        now_us,
                        tracker.id,
                        tracker.advertiser_id,
                        tracker.line_item_id,
                        tracker.publisher_id,
                        tracker.placement_id,
                        priced[0],
                        address[2],
                        info_of_device[0],
                        None if opted else info_of_device[1],
                        None if opted else info_of_device[2],
                    )
                )
            )
        return _new_tuple(
            Outcome, (kind, location, record, info, None, body, None, None, set_cookie)
        )

    def _beacon(self, req: RequestLike) -> Outcome:
        """A viewability beacon: the event of its impression's state, or only a count."""
        metrics = self.metrics
        metrics.requests[VIEW_BEACON_PATH] = metrics.requests.get(VIEW_BEACON_PATH, 0) + 1
        method = req.method
        if method == "HEAD":
            return Outcome(_NO_CONTENT)
        if method != "GET" and method != "POST":
            return Outcome(_METHOD_NOT_ALLOWED)
        state, raw_token = parse_beacon_query(req.query)
        refused: str | None = None
        token: ViewToken | None = None
        now_us = _time_ns() // 1000
        if state is None:
            refused = "bad_state"
        elif raw_token is None:
            refused = "no_token"
        else:
            token = self.viewability.signer.verify(raw_token)
            if token is None:
                refused = "bad_token"
            elif not beacon_window_open(token.ts, now_us, self.viewability.beacon_days):
                refused = "expired"
        if refused is not None or token is None or state is None:
            beacons = metrics.view_beacons
            key = refused or "bad_token"
            beacons[key] = beacons.get(key, 0) + 1
            return Outcome(_NO_CONTENT)
        record = beacon_record(self.next_event_id(), token, state)
        return Outcome(_NO_CONTENT, None, record, None, None, None, state)

    def _client_ip(self, req: RequestLike) -> str | None:
        """The visitor's full address: the last ``X-Forwarded-For`` hop where that is trusted."""
        if req.forwarded_for and self.trust_forwarded_for:
            return req.forwarded_for.rpartition(b",")[2].strip().decode("latin-1")
        return req.client_ip

    def _visit_verdict(self, client_ip: str | None, purpose: bytes | None) -> str | None:
        """The invalid-traffic reason of a visit whose user agent passed (``datacentre``,
        ``prefetch``), or None."""
        if client_ip and self.datacentres.is_datacentre(client_ip):
            return INVALID_DATACENTRE
        if purpose is not None and is_prefetch(purpose):
            return INVALID_PREFETCH
        return None

    def _conversion(self, req: RequestLike) -> Outcome:
        """``/sspx`` and ``/px``: a conversion (``conversions.py``), off the path of
        impressions and clicks."""
        requests = self.metrics.requests
        requests[req.path] = requests.get(req.path, 0) + 1
        if req.path == BROWSER_PIXEL_PATH:
            # the visitor's invalid-traffic verdict, as an impression's
            invalid_reason = self.bots.classify(req.user_agent)[1]
            if invalid_reason is None:
                invalid_reason = self._visit_verdict(self._client_ip(req), req.purpose)
            # conversion cookies are not read for a visitor who asks not to be tracked
            cookie = None if opted_out(req.sec_gpc, req.dnt) else req.cookie
            kind, record = self.conversions.handle_browser(
                req.method, req.query, self.next_event_id(), invalid_reason, cookie
            )
        else:
            kind, record = self.conversions.handle(req.method, req.query, self.next_event_id())
        if record is None:
            return Outcome(kind)
        return Outcome(kind, None, record.data, verdict=(CONVERSION, record.invalid_reason))

    def _resolve(
        self,
        req: RequestLike,
        imp_type: int,
        allow_lookup: bool,
        looked_up: CachedTracker | None = None,
    ) -> TagPlan | Outcome:
        """The general path: parse the query, find and check the tracker, decide the answer.

        Returns the final :class:`Outcome` when nothing is to be recorded (``HEAD``, a rejected
        tracker, or a store lookup to do first), else the :class:`TagPlan` of a recorded hit.
        """
        metrics = self.metrics
        query = parse_query(req.query)

        # ---- which tracker
        tracker: CachedTracker | None = None
        reject: str | None = None
        cache = self.cache
        generation = cache.generation  # read first: a reload after this makes the plan stale
        raw_id = query.id
        if raw_id is not None:
            tracker_id = _parse_id(raw_id)
            if tracker_id is None:
                reject = REJECT_UNKNOWN_TRACKER
            else:
                tracker = cache.by_id(tracker_id)
                if tracker is None and looked_up is not None and looked_up.id == tracker_id:
                    tracker = looked_up
                if tracker is None:
                    key: LookupKey = ("id", tracker_id)
                    if allow_lookup and cache.may_lookup(key):
                        return Outcome(_NOT_FOUND, None, None, None, key)
                    reject = REJECT_UNKNOWN_TRACKER
        elif query.code:
            tracker = cache.by_code(imp_type, query.code)
            if (
                tracker is None
                and looked_up is not None
                and looked_up.code == query.code
                and looked_up.imp_type == imp_type
            ):
                tracker = looked_up
            if tracker is None:
                key = (imp_type, query.code)
                if allow_lookup and cache.may_lookup(key):
                    return Outcome(_NOT_FOUND, None, None, None, key)
                reject = REJECT_UNKNOWN_TRACKER
        else:
            reject = REJECT_MISSING_ID
        if tracker is not None:
            if tracker.imp_type != imp_type:
                reject = REJECT_WRONG_TYPE
            elif not tracker.active:
                reject = REJECT_INACTIVE_TRACKER

        # ---- the redirect: syntax (the query parser), then the policy
        location = query.redirect
        redir_metric: str | None = None
        if location is not None:
            if tracker is None:
                redir_metric = refusal(self.redirect_policy, reject, NO_OVERRIDE, location)
            else:
                redirects = tracker.redirects
                redir_metric = refusal(
                    redirects.policy or self.redirect_policy, reject, redirects, location
                )
            if redir_metric is not None:
                location = None
        else:
            redir_status = query.redir_status
            if redir_status is not _REDIR_OK and redir_status is not _REDIR_ABSENT:
                redir_metric = redir_status
        if redir_metric is not None:  # (once per request: a store lookup returned above)
            metrics.redir[redir_metric] = metrics.redir.get(redir_metric, 0) + 1

        # ---- the answer (the same whether or not anything is recorded)
        if location is not None:
            kind = _REDIRECT
        elif imp_type == IMPRESSION:
            kind = _SCRIPT if query.t == "1" else _PIXEL
        elif reject == REJECT_MISSING_ID:
            kind = _BAD_REQUEST  # no id or code: nothing to send the visitor to
        elif reject in (REJECT_UNKNOWN_TRACKER, REJECT_WRONG_TYPE):
            kind = _NOT_FOUND  # no such click tracker
        elif tracker is not None and tracker.landing_page is not None:
            kind, location = _REDIRECT, tracker.landing_page
        else:
            kind = _CLICK_PAGE

        head = req.method == "HEAD"
        if (head or reject is not None) and location is not None and imp_type == CLICK:
            location = without_token(location)  # no click recorded: no token to pass on
        if head:
            return Outcome(kind, location)
        if reject is not None:
            metrics.rejected[reject] = metrics.rejected.get(reject, 0) + 1
            if tracker is not None:
                self._remember_rejected(tracker.id, reject, location, redir_metric, req)
            return Outcome(kind, location)
        assert tracker is not None
        parts = None
        if location is not None and imp_type == CLICK:
            parts = token_parts(location, tracker.token_param)

        raw_ancost = query.ancost
        ancost_micros = parse_ancost(raw_ancost) if raw_ancost else None
        return TagPlan(
            generation,
            tracker,
            kind,
            location,
            ancost_micros,
            bool(raw_ancost) and ancost_micros is None,
            redir_metric,
            self.fragments,
            query.cachebuster,
            parts,
        )

    def _remember_rejected(
        self,
        tracker_id: int,
        reason: str,
        location: bytes | None,
        redirect_refused: str | None,
        req: RequestLike,
    ) -> None:
        """A rejected hit of a known tracker, for the console's live hits (not billable)."""
        user_agent = self.bots.classify(req.user_agent)[0]
        referrer = self.fragments.referrer(req.referrer)[0] if req.referrer else None
        if self.honour_privacy_signals and opted_out(req.sec_gpc, req.dnt):
            user_agent = referrer = None
        self.hits.add(
            tracker_id,
            RecentHit(
                _time_ns() // 1000,
                "rejected:" + reason,
                0,
                False,
                None if location is None else location.decode("latin-1"),
                user_agent,
                referrer,
                None,
                redirect_refused,
            ),
        )

    # ---- after the store answered ----

    def committed(self, outcomes: Sequence[Outcome]) -> None:
        """The events of these outcomes are durable and their answers went out: count them and
        keep them for the live hits (called per batch, after the answers are written)."""
        infos = list(filter(None, map(_EVENT_OF, outcomes)))  # (no Python-level loop per event)
        self.metrics.events.update(map(_VERDICT_KEY, infos))  # counted in C
        self.hits.add_stored(infos)
        if len(infos) != len(outcomes):  # (some outcomes were beacons or conversions)
            beacons = self.metrics.view_beacons
            for outcome in outcomes:
                if outcome.view_state is not None:
                    beacons[outcome.view_state] = beacons.get(outcome.view_state, 0) + 1
                elif outcome.verdict is not None:
                    self.metrics.events[outcome.verdict] += 1

    def failed(self, outcomes: Iterable[Outcome]) -> None:
        """The store refused these events: they are answered 503 and must leave no trace.

        A valid click remembered for duplicate detection is forgotten again, so the client's
        retry is not mistaken for a duplicate.
        """
        duplicates = self.duplicates
        count = 0
        for outcome in outcomes:
            info = outcome.event
            if info is None:
                count += outcome.view_state is not None or outcome.verdict is not None
                continue
            count += 1
            if (
                info.imp_type == CLICK
                and info.invalid_reason is None
                and usable_cachebuster(info.cachebuster)
            ):
                duplicates.forget(info.tracker_id, info.cachebuster)
        self.metrics.unavailable += count
