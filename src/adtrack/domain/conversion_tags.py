"""A conversion pixel's tags: what an advertiser puts on the page (or in the server) that
reports a conversion. Pure string work, no I/O.

Three forms, always https (the advertiser's pages are https, and the secure tags of the trackers
are too), on the tag host ``ADTRACK_PUBLIC_URL`` the trackers' tags use:

- ``image``, the browser pixel::

    <!-- Conversion Pixel - NAME - DO NOT MODIFY --><img src="https://HOST/px?id=7&order_id=
    [ORDER_ID]&value=[VALUE]&sspdata=[SSP_DATA]" width="1" height="1" alt="" /><!-- End of
    Conversion Pixel -->

- ``javascript``: the same comments around ``<script src="https://HOST/px?id=7&t=1&...">``;
- ``postback``: the server-side postback URL ``https://HOST/sspx?id=7&sspdata=[SSP_DATA]&
  order_id=[ORDER_ID]&value=[VALUE]``.

The placeholders are the advertiser's to fill (no ad server fills them): ``[SSP_DATA]`` the
click token the landing page received as ``sspdata`` (docs/conversions.md, "Click tokens"),
``[ORDER_ID]`` and ``[VALUE]`` the order and what it is worth, both optional: a parameter the
page has nothing for is best left out; one sent with its placeholder as it is (``[ORDER_ID]``)
is taken as absent by the tracking endpoints. ``PLACEHOLDERS`` says so for the
API, the console and the CLI.

Names are made safe for an HTML comment and URLs for an attribute as the trackers' tags are
(``domain/tags.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from adtrack.domain.tags import attribute_value, base_url, comment_text

__all__ = [
    "BROWSER_PIXEL_PATH",
    "PLACEHOLDERS",
    "POSTBACK_PATH",
    "ConversionPixelTags",
    "PixelTagData",
    "Placeholder",
    "render_pixel_tags",
]

BROWSER_PIXEL_PATH: Final = "/px"
POSTBACK_PATH: Final = "/sspx"


@dataclass(frozen=True)
class Placeholder:
    """One placeholder of a pixel's tags: the query parameter it fills and who fills it."""

    placeholder: str
    parameter: str
    required: bool
    meaning: str


SSP_DATA = Placeholder(
    "[SSP_DATA]",
    "sspdata",
    False,
    "The click token the landing page received in its sspdata parameter (the click tracker's "
    "landing page carries ${SSP_DATA} or a click token parameter). Without it the conversion "
    "is recorded but attributed to no click, and counts in no report.",
)
ORDER_ID = Placeholder(
    "[ORDER_ID]",
    "order_id",
    False,
    "Your order id, at most 100 characters: the same order counts once per pixel. Leave the "
    "parameter out when there is none (left as [ORDER_ID], it is taken as absent).",
)
VALUE = Placeholder(
    "[VALUE]",
    "value",
    False,
    "What the conversion books instead of the pixel's revenue: a decimal like 49.90 (at most "
    "6 decimals). Leave the parameter out to book the pixel's revenue.",
)
PLACEHOLDERS: Final = (SSP_DATA, ORDER_ID, VALUE)


@dataclass(frozen=True)
class PixelTagData:
    """What rendering needs to know about a conversion pixel."""

    id: int
    name: str
    code: str | None = None


@dataclass(frozen=True)
class ConversionPixelTags:
    """A pixel's three tags."""

    image: str  # <img> of the browser pixel
    javascript: str  # <script> of the browser pixel (t=1)
    postback: str  # the server-side postback URL

    def as_json(self) -> dict[str, str]:
        return {"image": self.image, "javascript": self.javascript, "postback": self.postback}


def _pixel_parameter(pixel: PixelTagData, use_code: bool) -> str:
    if use_code and pixel.code:
        return f"code={quote(pixel.code, safe='')}"
    return f"id={pixel.id}"


def _query(*pairs: str) -> str:
    return "&".join(pairs)


def _fill(placeholder: Placeholder) -> str:
    return f"{placeholder.parameter}={placeholder.placeholder}"


def render_pixel_tags(
    pixel: PixelTagData, public_url: str, *, use_code: bool = False
) -> ConversionPixelTags:
    """The pixel's tags on the tag host ``public_url`` (https whatever its scheme); named by
    ``code=`` instead of ``id=`` when ``use_code`` and the pixel has a code. Raises
    ``ValidationError`` (``public_url``) when the tag host is not a usable URL."""
    root = base_url(public_url, secure=True)
    named = _pixel_parameter(pixel, use_code)
    browser = (_fill(ORDER_ID), _fill(VALUE), _fill(SSP_DATA))
    image_url = f"{root}{BROWSER_PIXEL_PATH}?{_query(named, *browser)}"
    script_url = f"{root}{BROWSER_PIXEL_PATH}?{_query(named, 't=1', *browser)}"
    postback = (
        f"{root}{POSTBACK_PATH}?{_query(named, _fill(SSP_DATA), _fill(ORDER_ID), _fill(VALUE))}"
    )
    name = comment_text(pixel.name)
    head = f"<!-- Conversion Pixel - {name} - DO NOT MODIFY -->"
    tail = "<!-- End of Conversion Pixel -->"
    return ConversionPixelTags(
        image=f'{head}<img src="{attribute_value(image_url)}" width="1" height="1" alt="" />{tail}',
        javascript=(
            f'{head}<script src="{attribute_value(script_url)}" type="text/javascript"></script>'
            f"{tail}"
        ),
        postback=postback,
    )
