"""Conversions reported to a conversion pixel: ``GET /sspx`` (server-side postbacks) and
``GET /px`` (the browser pixel on the advertiser's page).

``/sspx?id=<pixel id>`` (or ``code=<pixel code>``) ``&sspdata=<click token>`` and optional
``order_id`` (at most 100 characters) and ``value`` (a decimal like ``ancost``: what the
conversion books instead of the pixel's revenue). A conversion is an event of its own type
(``ImpType.CONVERSION``, record format 3) that goes through the event log like impressions and
clicks: answered 200 only once the log holds it, 503 when it cannot.

What one conversion decides alone is decided here, with the pixel as the collector knows it:
whether its click token reads (``malformed``, ``forged``, ``expired``), is of the pixel's
advertiser, may count post-click (the pixel's trigger type) and is within the pixel's post-click
window. Such a conversion is attributed post-click to the token's click (its tracker, line item,
publisher, placement and payment rule); any other is recorded unattributed with its reason. What
depends on conversions counted before (the same ``order_id``, ``min_minutes_per_conversion``) is
the aggregator's call, where every collector's conversions meet.

A postback comes from the advertiser's server, not the visitor's browser: its address, agent and
referrer say nothing about the visitor, so the record keeps none of them, and the bot and
prefetch rules (about browsers) do not apply. A conversion whose click was invalid traffic is
invalid too (``invalid_click``). None of this is on the path of impressions and clicks.

The browser pixel ``/px`` takes the same parameters (and ``t=1`` for a script instead of the
image); the landing page passes the click token on as ``sspdata``. It answers like an
impression pixel, whatever becomes of the conversion, and the invalid-traffic rules about the
visitor apply as to impressions (``bot``, ``non_browser``, ``datacentre``, ``prefetch``: the
conversion is recorded invalid); the visitor's address, agent and referrer are not recorded
either. Where the pixel's
advertiser sets conversion cookies (``conversion_cookies.py``), a ``/px`` conversion that its
``sspdata`` does not attribute is attributed from them: post-click to the cookie's click within
the post-click window, else post-view to its impression within the post-view window (a click
wins over an impression, as on the original platform), as the pixel's trigger type allows.
"""

from __future__ import annotations

import time
from typing import Final, NamedTuple
from urllib.parse import unquote

from adtrack.collector.ancost import parse_ancost
from adtrack.collector.conversion_cookies import read_cookies
from adtrack.collector.responses import AnswerKind
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.collector.tracker_tables import CachedPixel
from adtrack.domain.click_tokens import ClickTokenRefused, ClickTokens, TokenEvent
from adtrack.domain.conversion_tags import BROWSER_PIXEL_PATH, PLACEHOLDERS, POSTBACK_PATH
from adtrack.domain.events import (
    CONVERSION_NO_TOKEN,
    CONVERSION_OUT_OF_WINDOW,
    CONVERSION_TRIGGER_TYPE,
    CONVERSION_WRONG_ADVERTISER,
    MAX_ORDER_ID_LENGTH,
    POST_CLICK,
    POST_VIEW,
    Event,
)
from adtrack.domain.model import ImpType

__all__ = [
    "CONVERSION",
    "CONVERSION_PATHS",
    "INVALID_CLICK",
    "ConversionPostbacks",
    "ConversionQuery",
    "ConversionRecord",
    "parse_conversion_query",
]

CONVERSION_PATHS: Final = (POSTBACK_PATH, BROWSER_PIXEL_PATH)
CONVERSION: Final = int(ImpType.CONVERSION)
# why a conversion is invalid traffic: the click its token names was
INVALID_CLICK: Final = "invalid_click"
REJECT_UNKNOWN_PIXEL: Final = "unknown_conversion_pixel"
REJECT_INACTIVE_PIXEL: Final = "inactive_conversion_pixel"
REJECT_MISSING_PIXEL: Final = "missing_conversion_pixel"
REJECT_ORDER_ID: Final = "order_id_too_long"
_MAX_RAW_PARAMETER = 3 * 256  # bytes of one parameter read at most (a token is under 140)
_time_ns = time.time_ns  # (tests move the clock here)


class ConversionRecord(NamedTuple):
    """A conversion to make durable: its event record, and its verdict for the collector's
    metrics once the log holds it (None: valid, else the invalid reason)."""

    data: bytes
    invalid_reason: str | None


class ConversionQuery:
    """The parameters of ``/sspx`` (first occurrence wins; names are case-sensitive)."""

    __slots__ = ("id", "code", "sspdata", "order_id", "value", "t")

    def __init__(self) -> None:
        self.id: str | None = None
        self.code: str | None = None
        self.sspdata: str | None = None
        self.order_id: str | None = None
        self.value: str | None = None
        self.t: str | None = None  # /px: "1" JavaScript, else the image


def _text(raw: bytes) -> str:
    text = raw[:_MAX_RAW_PARAMETER].decode("latin-1")
    if "%" in text or "+" in text:
        return unquote(text.replace("+", " "), encoding="utf-8", errors="replace")
    return raw[:_MAX_RAW_PARAMETER].decode("utf-8", "replace")


# An exported tag's placeholders (``[ORDER_ID]``...) left as they are: the page had nothing to
# fill in, so the parameter is taken as absent (a literal ``[ORDER_ID]`` would otherwise be one
# order id shared by every conversion).
_UNFILLED: Final = frozenset(placeholder.placeholder for placeholder in PLACEHOLDERS)


def parse_conversion_query(query: bytes) -> ConversionQuery:
    parsed = ConversionQuery()
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        field = name.decode("latin-1")
        if field in ConversionQuery.__slots__ and getattr(parsed, field) is None:
            text = _text(value)
            if text not in _UNFILLED:
                setattr(parsed, field, text)
    return parsed


def _pixel_id(raw: str) -> int | None:
    raw = raw.strip()
    if not raw or len(raw) > 12 or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


class ConversionPostbacks:
    """Decides the answer and the event record of one ``/sspx`` request (no I/O)."""

    def __init__(
        self,
        cache: TrackerCache,
        click_tokens: ClickTokens,
        rejected: dict[str, int],
    ) -> None:
        self.cache = cache
        self.click_tokens = click_tokens
        self.rejected = rejected  # the collector's rejections by reason (its metrics)

    def _reject(self, reason: str, kind: int) -> tuple[int, ConversionRecord | None]:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return kind, None

    def pixel(self, query: ConversionQuery) -> CachedPixel | None:
        if query.id:
            pixel_id = _pixel_id(query.id)
            return None if pixel_id is None else self.cache.pixel_by_id(pixel_id)
        return self.cache.pixel_by_code(query.code) if query.code else None

    def handle_browser(
        self,
        method: str,
        raw_query: bytes,
        event_id: str,
        invalid_reason: str | None,
        cookie: bytes | None,
    ) -> tuple[int, ConversionRecord | None]:
        """``/px``, the browser pixel: the same conversion as a postback's, answered with an
        image (``t=2``, the default) or a script (``t=1``) whatever becomes of it, so that a page
        never breaks. A bad ``value`` is ignored (the pixel's revenue applies, as a bad ``ancost``
        is ignored); a missing, unknown or inactive pixel or a too long ``order_id`` records
        nothing. ``invalid_reason``: the visitor's invalid-traffic verdict (the conversion is
        recorded invalid with it), or None. ``cookie``: the request's
        ``Cookie`` header, None when it has none or the visitor asked not to be tracked."""
        if method != "GET" and method != "HEAD":
            return AnswerKind.METHOD_NOT_ALLOWED, None
        query = parse_conversion_query(raw_query)
        answer = AnswerKind.SCRIPT if query.t == "1" else AnswerKind.PIXEL
        if not query.id and not query.code:
            return self._reject(REJECT_MISSING_PIXEL, answer)
        pixel = self.pixel(query)
        if pixel is None:
            return self._reject(REJECT_UNKNOWN_PIXEL, answer)
        if not pixel.active:
            return self._reject(REJECT_INACTIVE_PIXEL, answer)
        order_id = query.order_id or None
        if order_id is not None and len(order_id) > MAX_ORDER_ID_LENGTH:
            return self._reject(REJECT_ORDER_ID, answer)
        value_micros = parse_ancost(query.value) if query.value else None
        if method == "HEAD":
            return answer, None
        return answer, self.record(
            pixel,
            query.sspdata,
            order_id,
            value_micros,
            event_id,
            _time_ns() // 1000,
            invalid_reason,
            cookie,
        )

    def handle(
        self, method: str, raw_query: bytes, event_id: str
    ) -> tuple[int, ConversionRecord | None]:
        """The answer's kind and the record to make durable before answering (None: answer
        at once, nothing recorded)."""
        if method != "GET" and method != "HEAD":
            return AnswerKind.METHOD_NOT_ALLOWED, None
        query = parse_conversion_query(raw_query)
        if not query.id and not query.code:
            return self._reject(REJECT_MISSING_PIXEL, AnswerKind.NO_PIXEL)
        pixel = self.pixel(query)
        if pixel is None:
            return self._reject(REJECT_UNKNOWN_PIXEL, AnswerKind.NOT_FOUND)
        if not pixel.active:  # counts nothing
            return self._reject(REJECT_INACTIVE_PIXEL, AnswerKind.NOT_FOUND)
        order_id = query.order_id or None
        if order_id is not None and len(order_id) > MAX_ORDER_ID_LENGTH:
            return AnswerKind.BAD_ORDER_ID, None
        value_micros: int | None = None
        if query.value:
            value_micros = parse_ancost(query.value)
            if value_micros is None:
                return AnswerKind.BAD_VALUE, None
        if method == "HEAD":
            return AnswerKind.CONVERSION, None
        return AnswerKind.CONVERSION, self.record(
            pixel, query.sspdata, order_id, value_micros, event_id, _time_ns() // 1000
        )

    def record(
        self,
        pixel: CachedPixel,
        token: str | None,
        order_id: str | None,
        value_micros: int | None,
        event_id: str,
        now_us: int,
        invalid_reason: str | None = None,
        cookie: bytes | None = None,
    ) -> ConversionRecord:
        """The conversion's event record, attributed post-click where its token allows, else
        (``/px`` with ``cookie``, where the pixel reads them) from its advertiser's conversion
        cookies (``invalid_reason``: the invalid-traffic verdict of a browser pixel's visitor).
        Unattributed, the record keeps the reason of the first token it read (the token, the
        click cookie, the impression cookie), and that token's event as its source."""
        # (attribution, the token to read and how), in order of precedence
        candidates: list[tuple[str, str]] = []
        if token:
            candidates.append((POST_CLICK, token))
        if cookie is not None and pixel.reads_cookies:
            click_cookie, impression_cookie = read_cookies(cookie, pixel.advertiser_id)
            if click_cookie:
                candidates.append((POST_CLICK, click_cookie))
            if impression_cookie:
                candidates.append((POST_VIEW, impression_cookie))
        attribution: str | None = None
        reason: str | None = None
        source: TokenEvent | None = None
        attributed: TokenEvent | None = None
        for kind, text in candidates:
            refused, read = self._attribute(pixel, kind, text, now_us)
            if source is None:
                source = read
            if refused is None:
                attribution, attributed = kind, read
                break
            reason = reason or refused
        if attributed is not None:
            reason, source = None, attributed
        elif not candidates:
            reason = CONVERSION_NO_TOKEN
        tracker_id = line_item_id = publisher_id = 0
        placement_id = payment_rule_id = None
        if attributed is not None:
            tracker_id, line_item_id = attributed.tracker_id, attributed.line_item_id
            publisher_id = attributed.publisher_id
            placement_id, payment_rule_id = attributed.placement_id, attributed.payment_rule_id
        source_event_id = None if source is None else source.event_id
        source_ts = None if source is None else source.ts_us
        invalid = source is not None and source.invalid
        if value_micros is not None:
            revenue = value_micros
        elif attribution == POST_CLICK:
            revenue = pixel.post_click_revenue_micros
        elif attribution == POST_VIEW:
            revenue = pixel.post_view_revenue_micros
        else:
            revenue = 0
        invalid_reason = invalid_reason or (INVALID_CLICK if invalid else None)
        event = Event(
            event_id=event_id,
            ts=now_us,
            imp_type=CONVERSION,
            tracker_id=tracker_id,
            advertiser_id=pixel.advertiser_id,
            line_item_id=line_item_id,
            publisher_id=publisher_id,
            placement_id=placement_id,
            payment_rule_id=payment_rule_id,
            media_cost_micros=0,
            booked_revenue_micros=revenue,
            revenue_type="none",
            ancost_used=value_micros is not None,
            cachebuster=None,
            ip=None,
            country=None,
            user_agent=None,
            device_type=None,
            os=None,
            browser=None,
            referrer=None,
            invalid=invalid_reason is not None,
            invalid_reason=invalid_reason,
            redirect_url=None,
            view_state=None,
            impression_event_id=None,
            conversion_pixel_id=pixel.id,
            order_id=order_id,
            attribution=attribution,
            attribution_reason=reason,
            source_event_id=source_event_id,
            source_ts=source_ts,
        )
        return ConversionRecord(event.to_bytes(), invalid_reason)

    def _attribute(
        self, pixel: CachedPixel, attribution: str, text: str, now_us: int
    ) -> tuple[str | None, TokenEvent | None]:
        """Whether the click (post-click) or impression (post-view) token ``text`` attributes a
        conversion of ``pixel`` now: (None, its event), or (the reason why not, its event if
        the token read)."""
        try:
            if attribution == POST_CLICK:
                event = self.click_tokens.read(text, now_us)
            else:
                event = self.click_tokens.read_impression(text, now_us)
        except ClickTokenRefused as refused:
            return refused.reason, None
        if event.advertiser_id != pixel.advertiser_id:
            return CONVERSION_WRONG_ADVERTISER, event
        if attribution == POST_CLICK:
            takes, window = pixel.takes_post_click, pixel.post_click_window_micros
        else:
            takes, window = pixel.takes_post_view, pixel.post_view_window_micros
        if not takes:
            return CONVERSION_TRIGGER_TYPE, event
        if now_us - event.ts_us > window:
            return CONVERSION_OUT_OF_WINDOW, event
        return None, event
