"""Conversion cookies: the tracking-domain cookies an advertiser may choose to set on its clicks
and impressions (``Advertiser.conversion_cookies``), from which its browser conversion pixel
(``/px``) attributes post-click and post-view conversions (docs/conversions.md, "Cookies").

One cookie per advertiser and kind, holding the sealed token of its latest valid click
(``adt_c<advertiser id>``) or impression (``adt_i<advertiser id>``): the latest one wins, as
the original platform's last-click and last-view attribution does. Each lives as long as the
longest window it can attribute in (90 days for clicks, 30 for impressions), is ``HttpOnly`` (no
page script reads it) and ``SameSite=None; Secure``: it must reach the tracking host from the
advertiser's pages, another site, which browsers allow only over HTTPS. Never set for a visitor
who sends ``Sec-GPC: 1`` or ``DNT: 1``, nor read then.
"""

from __future__ import annotations

from typing import Final

from adtrack.domain.click_tokens import MAX_AGE_MICROS, MAX_IMPRESSION_AGE_MICROS
from adtrack.domain.model import ImpType

__all__ = [
    "CLICK_COOKIE",
    "IMPRESSION_COOKIE",
    "cookie_parts",
    "read_cookies",
]

CLICK_COOKIE: Final = b"adt_c"  # + the advertiser id
IMPRESSION_COOKIE: Final = b"adt_i"
_ATTRIBUTES: Final = b"; Path=/; Secure; HttpOnly; SameSite=None\r\n"
# what follows a cookie's value in its Set-Cookie line, by kind
_TAILS: Final = {
    CLICK_COOKIE: b"; Max-Age=%d%s" % (MAX_AGE_MICROS // 1_000_000, _ATTRIBUTES),
    IMPRESSION_COOKIE: b"; Max-Age=%d%s" % (MAX_IMPRESSION_AGE_MICROS // 1_000_000, _ATTRIBUTES),
}
_MAX_COOKIE_HEADER: Final = 8192  # bytes of a Cookie header read at most (the joined limit)


def cookie_parts(imp_type: int, advertiser_id: int) -> tuple[bytes, bytes]:
    """The ``Set-Cookie`` header line (with its CRLF) of the cookie a tracker of ``imp_type``
    (9 impression, 10 click) sets for its advertiser, cut where the token goes: a hit's line
    is ``token.join(parts)`` (made once per tracker, as its redirect target's token parts)."""
    kind = CLICK_COOKIE if imp_type == ImpType.EXTERNAL_CLICK else IMPRESSION_COOKIE
    return b"Set-Cookie: " + kind + str(advertiser_id).encode() + b"=", _TAILS[kind]


def read_cookies(header: bytes | None, advertiser_id: int) -> tuple[str | None, str | None]:
    """The click and the impression token an advertiser's cookies hold in a ``Cookie`` header
    (``None`` where absent; the first of a repeated name, as browsers send the most specific
    first)."""
    if not header:
        return None, None
    suffix = str(advertiser_id).encode()
    click_name, impression_name = CLICK_COOKIE + suffix, IMPRESSION_COOKIE + suffix
    click = impression = None
    # (repeated Cookie headers arrive joined with ","; no cookie value holds one)
    for pair in header[:_MAX_COOKIE_HEADER].replace(b",", b";").split(b";"):
        name, _, value = pair.strip().partition(b"=")
        if name == click_name and click is None:
            click = value.strip(b'" ').decode("latin-1")
        elif name == impression_name and impression is None:
            impression = value.strip(b'" ').decode("latin-1")
    return click, impression
