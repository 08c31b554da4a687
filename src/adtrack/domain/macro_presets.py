"""Ad-server macro presets: how each exported placeholder is spelled for the ad server the tag
will be pasted into.

An exported tag carries up to three placeholders (``cachebuster``, ``ancost``, ``redir``). The
original platform writes them in square brackets (``[CACHEBUSTER]``) and leaves it to the trafficker
to swap in the ad server's own macros. A preset writes them directly in the ad server's syntax, so
the ad server fills them at serving time.

Sources (each ad server's public documentation):

- Google Ad Manager, "Macros" (support.google.com/admanager/answer/2376981): ``%%CACHEBUSTER%%``
  (case-sensitive) is the cache-busting macro. "Macros for custom creatives"
  (support.google.com/admanager/answer/6081628) lists the click macros: ``%%CLICK_URL_UNESC%%`` /
  ``%%CLICK_URL_ESC%%`` (Ad Manager's own click-tracking URL, a *prefix* that expects a destination
  after it) and ``%%DEST_URL%%`` / ``%%DEST_URL_ESC%%`` / ``%%DEST_URL_ESC_ESC%%`` (the creative's
  click-through URL). ``redir`` needs the landing page itself, un-encoded (it is the last query
  parameter), so the preset uses ``%%DEST_URL%%``.
- Xandr / Microsoft Invest, "Supported creative macros"
  (learn.microsoft.com/en-us/xandr/monetize/supported-creative-macros) and "Xandr macros"
  (learn.microsoft.com/en-us/xandr/bidders/xandr-macros): ``${CACHEBUSTER}`` is a random number
  string, ``${CLICK_URL}`` the (un-encoded) click-tracking URL, ``${CLICK_URL_ENC}`` its encoded
  form. Xandr has no destination-URL macro: ``redir=${CLICK_URL}`` sends the click on through
  Xandr's own click tracking, which then lands on the creative's landing page.
- Campaign Manager 360, "Campaign Manager 360 macros" (support.google.com/campaignmanager/table/
  6096962): ``%n`` is the random-number (cache-buster) macro and works in impression and click
  event tags, click trackers and click-through URLs; ``%u`` is the landing-page URL macro and
  ``%c`` the click-string macro, both for creative code. ``%c`` is a prefix that needs the landing
  page after it, so ``redir`` uses ``%u``. (``[timestamp]`` is the placeholder *CM360's own tags*
  ask other ad servers to fill; CM360 does not expand it itself.)

None of these ad servers has a macro for "the media cost paid for this one event" (``ancost`` is a
per-event cost, not a CPM; an auction-price macro would be a CPM and the wrong quantity). Every
preset therefore keeps the generic ``[ANCOST]`` placeholder, which the trafficker replaces by the
fixed cost per event they pay, and the export answer carries a warning saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Macro(StrEnum):
    """The placeholders an exported tag may carry, in the order they appear in the query."""

    CACHEBUSTER = "CACHEBUSTER"
    ANCOST = "ANCOST"
    REDIRECT_URL = "REDIRECT_URL"


class Preset(StrEnum):
    GENERIC = "generic"
    GAM = "gam"
    XANDR = "xandr"
    CM360 = "cm360"


# The query parameter each macro fills.
MACRO_PARAMETER: Mapping[Macro, str] = MappingProxyType(
    {Macro.CACHEBUSTER: "cachebuster", Macro.ANCOST: "ancost", Macro.REDIRECT_URL: "redir"}
)

GENERIC_PLACEHOLDERS: Mapping[Macro, str] = MappingProxyType(
    {m: f"[{m.value}]" for m in Macro}  # [CACHEBUSTER], [ANCOST], [REDIRECT_URL]
)


@dataclass(frozen=True)
class MacroPreset:
    """One ad server's spelling of the placeholders.

    ``native`` lists the macros the ad server fills by itself; the others keep the generic
    square-bracket placeholder for the trafficker to replace by hand.
    """

    preset: Preset
    label: str
    placeholders: Mapping[Macro, str]
    native: frozenset[Macro]
    source: str

    def placeholder(self, macro: Macro) -> str:
        return self.placeholders[macro]


def _preset(preset: Preset, label: str, native: Mapping[Macro, str], source: str) -> MacroPreset:
    placeholders = dict(GENERIC_PLACEHOLDERS)
    placeholders.update(native)
    return MacroPreset(
        preset=preset,
        label=label,
        placeholders=MappingProxyType(placeholders),
        native=frozenset(native),
        source=source,
    )


PRESETS: Mapping[Preset, MacroPreset] = MappingProxyType(
    {
        Preset.GENERIC: _preset(
            Preset.GENERIC,
            "Generic (square-bracket placeholders)",
            {},
            "the original platform's export dialog",
        ),
        Preset.GAM: _preset(
            Preset.GAM,
            "Google Ad Manager",
            {Macro.CACHEBUSTER: "%%CACHEBUSTER%%", Macro.REDIRECT_URL: "%%DEST_URL%%"},
            "https://support.google.com/admanager/answer/2376981, "
            "https://support.google.com/admanager/answer/6081628",
        ),
        Preset.XANDR: _preset(
            Preset.XANDR,
            "Xandr / Microsoft Invest",
            {Macro.CACHEBUSTER: "${CACHEBUSTER}", Macro.REDIRECT_URL: "${CLICK_URL}"},
            "https://learn.microsoft.com/en-us/xandr/monetize/supported-creative-macros",
        ),
        Preset.CM360: _preset(
            Preset.CM360,
            "Campaign Manager 360",
            {Macro.CACHEBUSTER: "%n", Macro.REDIRECT_URL: "%u"},
            "https://support.google.com/campaignmanager/table/6096962",
        ),
    }
)


def get_preset(preset: Preset) -> MacroPreset:
    return PRESETS[preset]
