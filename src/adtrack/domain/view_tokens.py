"""Viewability tokens: the signed reference to one impression that the JavaScript tag's
measurement script sends back with each of its beacons (docs/tracking.md, "Viewability").

A token names the impression (its event id) and everything its rollup rows are keyed by (time,
tracker, advertiser, line item, publisher, placement, payment rule; country, device type, OS and
browser as its event recorded them), so a beacon is counted on exactly the impression's rows
without the collector or the aggregator looking the impression up.
It is ``<payload>.<mac>``, both base64url without padding: the payload is the JSON array of
:class:`ViewToken`'s fields, the mac the first 16 bytes of its HMAC-SHA256 under a key derived
from the deployment secret. Only the collector that signed a token (or one sharing its secret)
accepts it, so a beacon can only be about an impression that was stored: the script that carries
the token is answered after its impression is durable.

Pure: no I/O; the secret is handed in.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Final, NamedTuple

import orjson

from adtrack.domain.events import MAX_EVENT_ID_LENGTH, TEXT_LIMITS, TS_MAX, TS_MIN

__all__ = [
    "MAX_TOKEN_BYTES",
    "ViewToken",
    "ViewTokenSigner",
    "beacon_window_open",
]

MAX_TOKEN_BYTES: Final = 512  # a real token is about 110 bytes; longer ones are not read

_MAC_BYTES = 16  # 128 bits: forging one takes 2**128 tries
_KEY_LABEL = b"adtrack viewability token v1"  # derives this key from the deployment secret
_DAY_US = 86_400_000_000
_FUTURE_SKEW_US = 300_000_000  # collectors' clocks may disagree by this much


class ViewToken(NamedTuple):
    """What a token says about its impression (the fields of its rollup key)."""

    impression_event_id: str
    ts: int  # the impression's time, epoch microseconds
    tracker_id: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    payment_rule_id: int | None
    # the audience fields as the impression's event holds them (None: unknown, or left out for
    # a privacy signal)
    country: str | None = None
    device_type: str | None = None
    os: str | None = None
    browser: str | None = None


_AUDIENCE_WIDTHS = tuple(TEXT_LIMITS[name] for name in ("country", "device_type", "os", "browser"))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


_INT_LIMIT = 1 << 63


def _is_id(value: object) -> bool:
    return type(value) is int and 0 <= value < _INT_LIMIT


def _is_optional_id(value: object) -> bool:
    return value is None or _is_id(value)


def _is_optional_text(value: object, width: int | None) -> bool:
    return value is None or (
        type(value) is str and (width is None or len(value) <= width) and "\x00" not in value
    )


class ViewTokenSigner:
    """Signs and checks tokens with a key derived from ``secret``."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the viewability token secret must be at least 16 bytes")
        self._key = hmac.digest(secret, _KEY_LABEL, "sha256")

    def sign(self, token: ViewToken) -> bytes:
        """The token's text (ASCII, safe in a URL and in a JavaScript string)."""
        payload = _b64(orjson.dumps(tuple(token)))  # (orjson takes no NamedTuple)
        return payload + b"." + _b64(hmac.digest(self._key, payload, "sha256")[:_MAC_BYTES])

    def verify(self, text: bytes) -> ViewToken | None:
        """The token ``text`` holds if its mac is ours and its fields are well formed, else
        None (never raises: anyone can send anything)."""
        if len(text) > MAX_TOKEN_BYTES:
            return None
        payload, dot, mac = text.partition(b".")
        if not dot or not payload:
            return None
        try:
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        expected = hmac.digest(self._key, payload, "sha256")[:_MAC_BYTES]
        if not hmac.compare_digest(given, expected):
            return None
        try:
            fields = orjson.loads(_unb64(payload))
        except (binascii.Error, ValueError):  # (orjson.JSONDecodeError is a ValueError)
            return None
        if type(fields) is not list or len(fields) != len(ViewToken._fields):
            return None
        event_id, ts, *ids = fields[:8]
        if (
            type(event_id) is not str
            or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH
            or type(ts) is not int
            or not TS_MIN <= ts <= TS_MAX
            or not all(_is_id(value) for value in ids[:4])
            or not all(_is_optional_id(value) for value in ids[4:])
            or not all(map(_is_optional_text, fields[8:], _AUDIENCE_WIDTHS))
        ):
            return None
        return ViewToken._make(fields)


def beacon_window_open(impression_ts: int, now_us: int, days: int) -> bool:
    """Whether a beacon received at ``now_us`` about an impression of ``impression_ts`` is
    still taken: from the impression on, until the end of the UTC day ``days`` days after the
    impression's day (a few minutes of clock skew between collectors allowed)."""
    if impression_ts > now_us + _FUTURE_SKEW_US:
        return False
    return now_us // _DAY_US - impression_ts // _DAY_US <= days
