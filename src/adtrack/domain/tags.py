"""Tag rendering: a tracker and export options in, the tag to paste into an ad server out.

Pure string work, no I/O. The forms follow the original platform's export dialog, on one line:

- impression, ``pixel`` (the "secure pixel", always https)::

    <!-- Imp Tracker - NAME - DO NOT MODIFY --><img src="https://HOST/imptr?id=531&cachebuster=
    [CACHEBUSTER]&ancost=[ANCOST]&t=2&redir=[REDIRECT_URL]" width="1" height="1" /><!-- End of Imp
    Tracker -->

- impression, ``javascript``: the same comments around
  ``<script src="HOST/imptr?id=531&...&t=1" type="text/javascript"></script>``, with a comment
  naming the element whose viewability it measures (docs/tracking.md, "Viewability"): the
  tag's parent element (the creative's container), or the element with the id the export gave
  (``view_element``), which the script tag then names in ``data-view-element``;
- impression, ``url``: the bare pixel URL (``t=2``);
- click, ``url``: the bare click URL ``HOST/clktrb?id=21378&...``;
- click, ``anchor``::

    <!-- Click Tracker - NAME --><a href="HOST/clktrb?id=21378&cachebuster=[CACHEBUSTER]&ancost=
    [ANCOST]&redir=[REDIRECT_URL]">YOUR TEXT HERE</a><!-- End of Click Tracker -->

Query order is fixed: ``id`` (or ``code``), ``cachebuster``, ``ancost``, ``t``, ``redir`` —
``redir`` must be last (the tracking endpoints read everything after ``redir=`` as the target).

Escaping: names are HTML-escaped and stripped of control characters before they go into a comment,
so a name holding ``-->`` or ``--!>`` cannot close it. URLs are built from parts that are
percent-encoded or fixed (ids, placeholders), so they hold no quote, ``<`` or ``>``; attribute
values are escaped for those anyway. The ``&`` separators stay raw, as in the original's tags
and as ad servers' macro substitution expects: none of ``&cachebuster=``, ``&ancost=``, ``&t=``,
``&redir=``, ``&code=`` begins an HTML character reference, so browsers read them literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote, urlsplit

from adtrack.domain.errors import ValidationError
from adtrack.domain.macro_presets import MACRO_PARAMETER, Macro, Preset, get_preset
from adtrack.domain.model import TrackerType


class TagFormat(StrEnum):
    JAVASCRIPT = "javascript"  # impression trackers
    PIXEL = "pixel"  # impression trackers: the secure pixel
    URL = "url"  # both: the bare tracking URL
    ANCHOR = "anchor"  # click trackers


FORMATS_BY_TYPE: dict[TrackerType, tuple[TagFormat, ...]] = {
    TrackerType.IMPRESSION: (TagFormat.JAVASCRIPT, TagFormat.PIXEL, TagFormat.URL),
    TrackerType.CLICK: (TagFormat.URL, TagFormat.ANCHOR),
}

# What a tracker gets when the requested format does not apply to its type (or none is given):
# the secure pixel works wherever HTML is accepted and needs no script; the bare click URL is what
# an ad server's click-through field takes.
DEFAULT_FORMAT: dict[TrackerType, TagFormat] = {
    TrackerType.IMPRESSION: TagFormat.PIXEL,
    TrackerType.CLICK: TagFormat.URL,
}

MACRO_ORDER: tuple[Macro, ...] = (Macro.CACHEBUSTER, Macro.ANCOST, Macro.REDIRECT_URL)

ANCHOR_TEXT = "YOUR TEXT HERE"
IMPRESSION_PATH = "/imptr"
CLICK_PATH = "/clktrb"

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
# An element id the JavaScript tag measures: letters, digits and - _ : . (safe in an attribute
# and a comment as they are); at most 100 characters.
_ELEMENT_ID = re.compile(r"[A-Za-z0-9_:.-]{1,100}")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


@dataclass(frozen=True)
class TrackerTagData:
    """What rendering needs to know about a tracker."""

    id: int
    tracker_type: TrackerType
    name: str
    code: str | None = None


@dataclass(frozen=True)
class TagOptions:
    """How to render. ``format`` None means each tracker type's default.

    ``secure`` forces https whatever the scheme of ``public_url``; the ``pixel`` format is always
    secure.
    """

    public_url: str
    format: TagFormat | None = None
    macros: frozenset[Macro] = field(default_factory=frozenset)
    preset: Preset = Preset.GENERIC
    use_code: bool = False
    secure: bool = False
    view_element: str | None = None  # JavaScript tags: the id of the element to measure
    # False: the JavaScript tag as the original platform exported it, without the comment on
    # viewability (the tag map's old tags, which ad servers' bulk tools search for)
    viewability_comment: bool = True


def effective_format(tracker_type: TrackerType, requested: TagFormat | None) -> TagFormat:
    """The requested format if it fits the tracker type, else the type's default."""
    if requested is not None and requested in FORMATS_BY_TYPE[tracker_type]:
        return requested
    return DEFAULT_FORMAT[tracker_type]


def normalise_public_url(public_url: str) -> str:
    """Check the tag host (``ADTRACK_PUBLIC_URL``) and return it without a trailing slash.

    Raises ``ValidationError`` on anything that is not an absolute http(s) URL with a host and
    no query or fragment.
    """
    url = public_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            "public_url", f"ADTRACK_PUBLIC_URL must be an absolute http(s) URL, got {public_url!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError("public_url", "must not carry a query, a fragment or credentials")
    url = parts.scheme.lower() + url[len(parts.scheme) :]  # "HTTPS://" -> "https://"
    if any(c in url for c in "\"'<>\\ ") or _CONTROL_CHARS.search(url):
        raise ValidationError(
            "public_url", "ADTRACK_PUBLIC_URL holds characters that are not allowed in a URL"
        )
    return url


def base_url(public_url: str, secure: bool) -> str:
    """The scheme://host[:port][/prefix] tags point at; https when ``secure``."""
    url = normalise_public_url(public_url)
    if secure and url.startswith("http://"):
        return "https://" + url[len("http://") :]
    return url


def is_local_public_url(public_url: str) -> bool:
    """True when the tag host is this machine: tags pasted elsewhere would never reach it."""
    host = (urlsplit(public_url.strip()).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.") or host.endswith(".localhost")


def local_host_warning(public_url: str) -> str | None:
    """What to say when tags would point at this machine (None: they point elsewhere)."""
    if not is_local_public_url(public_url):
        return None
    return (
        f"the tag host is {public_url}, which only this machine can reach: "
        "set ADTRACK_PUBLIC_URL to the public address of the tracking server"
    )


def uses_https(fmt: TagFormat, options: TagOptions) -> bool:
    return options.secure or fmt is TagFormat.PIXEL


def tracker_url(tracker: TrackerTagData, options: TagOptions, fmt: TagFormat) -> str:
    """The tracking URL of ``tracker`` for format ``fmt`` (already resolved for its type)."""
    root = base_url(options.public_url, uses_https(fmt, options))
    preset = get_preset(options.preset)
    if options.use_code and tracker.code:
        params = [f"code={quote(tracker.code, safe='')}"]
    else:
        params = [f"id={tracker.id}"]
    for macro in MACRO_ORDER[:2]:  # cachebuster, ancost
        if macro in options.macros:
            params.append(f"{MACRO_PARAMETER[macro]}={preset.placeholder(macro)}")
    if tracker.tracker_type is TrackerType.IMPRESSION:
        params.append("t=1" if fmt is TagFormat.JAVASCRIPT else "t=2")
        path = IMPRESSION_PATH
    else:
        path = CLICK_PATH
    if Macro.REDIRECT_URL in options.macros:  # always last
        params.append(f"redir={preset.placeholder(Macro.REDIRECT_URL)}")
    return f"{root}{path}?{'&'.join(params)}"


def comment_text(text: str) -> str:
    """``text`` made safe inside an HTML comment: no control characters, and ``<``, ``>``,
    ``&`` and quotes escaped so nothing can end the comment early."""
    flat = _CONTROL_CHARS.sub(" ", text).strip()
    return (
        flat.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def attribute_value(url: str) -> str:
    """A URL made safe inside a double-quoted attribute (see the module doc about ``&``)."""
    return (
        url.replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;")
    )


def render_tag(tracker: TrackerTagData, options: TagOptions) -> str:
    """The tag for one tracker, in the format that applies to its type."""
    fmt = effective_format(tracker.tracker_type, options.format)
    url = tracker_url(tracker, options, fmt)
    name = comment_text(tracker.name)
    src = attribute_value(url)
    if fmt is TagFormat.URL:
        return url
    if fmt is TagFormat.PIXEL:
        return (
            f"<!-- Imp Tracker - {name} - DO NOT MODIFY -->"
            f'<img src="{src}" width="1" height="1" />'
            "<!-- End of Imp Tracker -->"
        )
    if fmt is TagFormat.JAVASCRIPT:
        # (its own comment: the first one's text up to DO NOT MODIFY is the tracker's name)
        element = options.view_element
        if element is None:
            measured, attribute = "this tag's parent element (the creative's container)", ""
        else:
            measured, attribute = (
                f'the element with id="{element}"',
                f' data-view-element="{element}"',
            )
        comment = f"<!-- Viewability measured on {measured} -->"
        return (
            f"<!-- Imp Tracker - {name} - DO NOT MODIFY -->"
            f"{comment if options.viewability_comment else ''}"
            f'<script src="{src}" type="text/javascript"{attribute}></script>'
            "<!-- End of Imp Tracker -->"
        )
    return (
        f"<!-- Click Tracker - {name} -->"
        f'<a href="{src}">{ANCHOR_TEXT}</a>'
        "<!-- End of Click Tracker -->"
    )


def parse_macros(values: Iterable[object]) -> frozenset[Macro]:
    """Macro names (case-insensitive) to ``Macro``s; ``ValidationError`` on ``macros``."""
    macros: set[Macro] = set()
    for value in values:
        try:
            macros.add(Macro(str(value).strip().upper()))
        except ValueError:
            allowed = ", ".join(m.value for m in Macro)
            raise ValidationError(
                "macros", f"unknown macro {value!r}; allowed: {allowed}"
            ) from None
    return frozenset(macros)


def parse_view_element(value: str | None) -> str | None:
    """The element id a JavaScript tag measures (None or blank: the tag's parent element);
    ``ValidationError`` on ``view_element``."""
    if value is None or not value.strip():
        return None
    element = value.strip()
    if not _ELEMENT_ID.fullmatch(element):
        raise ValidationError(
            "view_element",
            f"{value!r} is not an element id adtrack takes: 1 to 100 letters, digits, "
            "'-', '_', ':' or '.'",
        )
    return element


def parse_format(value: str | None) -> TagFormat | None:
    if value is None:
        return None
    try:
        return TagFormat(value.strip().lower())
    except (ValueError, AttributeError):
        allowed = ", ".join(f.value for f in TagFormat)
        raise ValidationError("format", f"unknown format {value!r}; allowed: {allowed}") from None


def parse_preset(value: str | None) -> Preset:
    if value is None:
        return Preset.GENERIC
    try:
        return Preset(value.strip().lower())
    except (ValueError, AttributeError):
        allowed = ", ".join(p.value for p in Preset)
        raise ValidationError("preset", f"unknown preset {value!r}; allowed: {allowed}") from None
