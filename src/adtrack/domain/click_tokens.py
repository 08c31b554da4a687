"""Click tokens: the opaque, sealed name of one recorded click (docs/conversions.md); and
impression tokens, the same for one impression.

The collector makes a click token for every recorded click whose redirect target asks for it
(the ``${SSP_DATA}`` / ``[SSP_DATA]`` macro, or the click tracker's ``ssp_data_param``); a
landing page passes it on, and a conversion reported with it is attributed to that click. Where
an advertiser sets conversion cookies, its clicks' and impressions' tokens are also kept in a
tracking-domain cookie (``collector/conversion_cookies.py``), from which its browser pixel
attributes post-click and post-view.

Payload (big-endian), sealed (encrypted and authenticated: ``sealed_tokens.py``, purpose
``click`` or ``impression``: one never opens as the other)::

    format (1 byte: 1) | flags (1 byte: 1 = an invalid event) | time (8: epoch microseconds)
    | tracker, advertiser, line item, publisher, placement, payment rule (4 each; 0 = none)
    | event id (the rest: ASCII, 1 to 40 bytes, as events hold it)

Everything a conversion is attributed to is in the token itself, so reading one needs neither
the event log nor the catalogue as it was at the time of the click or impression.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from adtrack.domain.events import MAX_EVENT_ID_LENGTH
from adtrack.domain.model import POST_CLICK_WINDOW_MAX_MINUTES, POST_VIEW_WINDOW_MAX_MINUTES
from adtrack.domain.sealed_tokens import FORGED, MALFORMED, TokenRefused, TokenSealer

__all__ = [
    "CLICK_TOKEN_MACROS",
    "EXPIRED",
    "FORGED",
    "MALFORMED",
    "MAX_AGE_MICROS",
    "MAX_CLOCK_SKEW_MICROS",
    "MAX_IMPRESSION_AGE_MICROS",
    "ClickTokenRefused",
    "ClickTokens",
    "TokenEvent",
]

FORMAT: Final = 1
FLAG_INVALID: Final = 1
EXPIRED: Final = "expired"
# The macros a redirect target carries the token in (as typed; the collector also finds their
# percent-encoded forms).
CLICK_TOKEN_MACROS: Final = ("${SSP_DATA}", "[SSP_DATA]")
# A token older than the longest post-click window can attribute nothing.
MAX_AGE_MICROS: Final = POST_CLICK_WINDOW_MAX_MINUTES * 60 * 1_000_000
# and an impression token older than the longest post-view window
MAX_IMPRESSION_AGE_MICROS: Final = POST_VIEW_WINDOW_MAX_MINUTES * 60 * 1_000_000
# A token dated later than now by more than this was not made by a collector of ours (whose
# clocks may differ a little).
MAX_CLOCK_SKEW_MICROS: Final = 5 * 60 * 1_000_000
_HEAD: Final = struct.Struct(">BBq")  # format, flags, time
_IDS: Final = struct.Struct(">6I")  # tracker, advertiser, line item, publisher, placement, rule
_FIXED: Final = _HEAD.size + _IDS.size
_PURPOSE: Final = "click"
_IMPRESSION_PURPOSE: Final = "impression"

ClickTokenRefused = TokenRefused  # reason: malformed, forged or expired


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """The click (or impression) a token names."""

    event_id: str
    ts_us: int  # epoch microseconds
    invalid: bool  # the event was recorded as invalid traffic
    tracker_id: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    payment_rule_id: int | None


class ClickTokens:
    """Makes and reads click and impression tokens with one secret (``ADTRACK_TOKEN_SECRET``)."""

    __slots__ = ("_seal", "_sealer", "_impressions")

    def __init__(self, secret: bytes) -> None:
        size = _FIXED + MAX_EVENT_ID_LENGTH
        self._sealer = TokenSealer(secret, _PURPOSE, max_payload_bytes=size)
        self._seal = self._sealer.seal
        self._impressions = TokenSealer(secret, _IMPRESSION_PURPOSE, max_payload_bytes=size)

    @staticmethod
    def click_ids(
        tracker_id: int,
        advertiser_id: int,
        line_item_id: int,
        publisher_id: int,
        placement_id: int | None,
        payment_rule_id: int | None,
    ) -> bytes:
        """The ids part of a token, packed once per tracker and price (see ``make``)."""
        return _IDS.pack(
            tracker_id,
            advertiser_id,
            line_item_id,
            publisher_id,
            placement_id or 0,
            payment_rule_id or 0,
        )

    def make(self, ts_us: int, invalid: bool, click_ids: bytes, event_id: bytes) -> bytes:
        """The token of one click (ASCII): ``click_ids`` from :meth:`click_ids`, ``event_id``
        ASCII."""
        return self._seal(_HEAD.pack(FORMAT, invalid, ts_us) + click_ids + event_id)

    def make_impression(self, ts_us: int, ids: bytes, event_id: bytes) -> bytes:
        """The token of one valid impression (``ids`` as for :meth:`make`)."""
        return self._impressions.seal(_HEAD.pack(FORMAT, False, ts_us) + ids + event_id)

    def read(self, token: str | bytes, now_us: int) -> TokenEvent:
        """The click ``token`` names; ``ClickTokenRefused`` (reason ``malformed``, ``forged``
        or ``expired``) for anything else. Whether the click is within a pixel's own window is
        the caller's check."""
        return _event(self._sealer.open(token), now_us, MAX_AGE_MICROS)

    def read_impression(self, token: str | bytes, now_us: int) -> TokenEvent:
        """The impression ``token`` names (:meth:`make_impression`), as :meth:`read`."""
        return _event(self._impressions.open(token), now_us, MAX_IMPRESSION_AGE_MICROS)


def _event(payload: bytes, now_us: int, max_age_us: int) -> TokenEvent:
    if len(payload) <= _FIXED or len(payload) > _FIXED + MAX_EVENT_ID_LENGTH:
        raise ClickTokenRefused(MALFORMED)
    version, flags, ts_us = _HEAD.unpack_from(payload)
    if version != FORMAT or flags & ~FLAG_INVALID:
        raise ClickTokenRefused(MALFORMED)
    tracker, advertiser, line_item, publisher, placement, rule = _IDS.unpack_from(
        payload, _HEAD.size
    )
    raw_event_id = payload[_FIXED:]
    if not raw_event_id.isascii() or not min(tracker, advertiser, line_item, publisher):
        raise ClickTokenRefused(MALFORMED)
    if ts_us > now_us + MAX_CLOCK_SKEW_MICROS or now_us - ts_us > max_age_us:
        raise ClickTokenRefused(EXPIRED)
    return TokenEvent(
        event_id=raw_event_id.decode("ascii"),
        ts_us=ts_us,
        invalid=bool(flags & FLAG_INVALID),
        tracker_id=tracker,
        advertiser_id=advertiser,
        line_item_id=line_item,
        publisher_id=publisher,
        placement_id=placement or None,
        payment_rule_id=rule or None,
    )
