"""The event record the collector appends to the event log, built from pre-encoded pieces.

The record is the JSON array of :class:`adtrack.domain.events.Event` in record format 2
(``HIT_RECORD_FORMAT``: the format's number, then the fields in order, without the conversion
fields, which a hit never has). Most of it repeats
from hit to hit — the tracker's ids, the pricing, the user agent, the truncated IP and country,
the device, the redirect target — so those parts are encoded once and cached (the visitor's in
``visitor.py``), and a hit only encodes what is new (event id, timestamp, cachebuster,
referrer) and joins the pieces: about a third of the cost of building and serialising the event
per hit.
"""

from __future__ import annotations

from typing import Final, TypeVar

import orjson

from adtrack.domain.events import INVALID_REASONS
from adtrack.domain.pricing import PricedEvent

__all__ = [
    "HIT_END",
    "INVALID_FRAGMENTS",
    "RecordFragments",
    "tracker_fragment",
    "user_agent_fragment",
]

_dumps = orjson.dumps
_CACHE_MAX = 4096
_CACHED_REFERRER_BYTES = 512
_K = TypeVar("_K")
_V = TypeVar("_V")


def _fields(*values: object) -> bytes:
    """``,v1,v2,...``: consecutive fields of the record, each preceded by its comma."""
    return b"," + _dumps(values)[1:-1]


# ``invalid`` and ``invalid_reason`` by reason (None: a valid event)
INVALID_FRAGMENTS: Final[dict[str | None, bytes]] = {
    reason: _fields(reason is not None, reason) for reason in (None, *INVALID_REASONS)
}
# ``user_agent`` alone: the fields derived from it (``device_type``, ``os``, ``browser``) follow
# it from the per-agent cache of visitor.py, as ``country`` follows ``ip`` from its per-address one.
NO_USER_AGENT: Final = b",null"
NO_REFERRER: Final = b",null"
NO_REDIRECT: Final = b",null"
# ``view_state`` and ``impression_event_id`` of a tracking hit, and the record's end
HIT_END: Final = b",null,null]"
MAX_REFERRER_BYTES: Final = 2048  # longer referrers are cut (stored) here


def tracker_fragment(
    imp_type: int,
    tracker_id: int,
    advertiser_id: int,
    line_item_id: int,
    publisher_id: int,
    placement_id: int | None,
) -> bytes:
    """``imp_type`` to ``placement_id`` of one tracker's events."""
    return _fields(imp_type, tracker_id, advertiser_id, line_item_id, publisher_id, placement_id)


def user_agent_fragment(user_agent: str | None) -> bytes:
    """``user_agent`` (``device_type``, ``os`` and ``browser`` follow it from visitor.py)."""
    return _fields(user_agent)


class RecordFragments:
    """Caches of the pieces that repeat: pricing, referrer, redirect target (bounded; the
    visitor's address and device are :mod:`adtrack.collector.visitor`'s)."""

    __slots__ = ("priced_cache", "referrer_cache", "redirect_cache")

    def __init__(self) -> None:
        self.priced_cache: dict[PricedEvent, bytes] = {}
        # raw header -> (text, fragment): the pages a tag runs on repeat from hit to hit
        self.referrer_cache: dict[bytes, tuple[str, bytes]] = {}
        self.redirect_cache: dict[bytes | None, bytes] = {None: NO_REDIRECT}

    @staticmethod
    def _store(cache: dict[_K, _V], key: _K, value: _V) -> _V:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = value
        return value

    def priced(self, priced: PricedEvent) -> bytes:
        """``payment_rule_id`` to ``ancost_used``."""
        fragment = self.priced_cache.get(priced)
        if fragment is None:
            fragment = _fields(
                priced.payment_rule_id,
                priced.media_cost_micros,
                priced.booked_revenue_micros,
                priced.revenue_type,
                priced.ancost_used,
            )
            self._store(self.priced_cache, priced, fragment)
        return fragment

    def referrer(self, raw: bytes) -> tuple[str, bytes]:
        """The ``Referer`` header (not empty) as text, cut to ``MAX_REFERRER_BYTES``, and its
        ``referrer`` fragment."""
        known = self.referrer_cache.get(raw)
        if known is None:
            text = raw[:MAX_REFERRER_BYTES].decode("utf-8", "replace")
            known = (text, _fields(text))
            if len(raw) <= _CACHED_REFERRER_BYTES:  # (keeps the cache's memory small)
                self._store(self.referrer_cache, raw, known)
        return known

    def redirect(self, location: bytes | None) -> bytes:
        """``redirect_url`` (the Location sent, as text)."""
        fragment = self.redirect_cache.get(location)
        if fragment is None:
            if location is None:
                return NO_REDIRECT
            text = location.decode("latin-1")
            fragment = self._store(self.redirect_cache, location, _fields(text))
        return fragment
