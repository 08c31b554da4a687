"""Where a click's token goes in its redirect target (docs/conversions.md, "Click tokens").

A target takes the token where it has the macro ``${SSP_DATA}`` or ``[SSP_DATA]``, and, when
its click tracker names a query parameter for it (``ssp_data_param``), in that parameter,
appended. The target is already a safe Location value (``query.redirect_target``), in which
``{`` and ``}`` are percent-encoded, and an ad server may have encoded the rest of the macro
too: every such spelling is found. The target is split once per tag (``TagPlan``) into the
parts between which the token goes, so that a click costs a join; a target without either
takes the path it always took.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["token_parts", "without_token"]

# ${SSP_DATA} and [SSP_DATA], each bracket literal or percent-encoded (either case of hex)
_MACRO: Final = re.compile(
    rb"(?:\$|%24)(?:\{|%7[bB])SSP_DATA(?:\}|%7[dD])|(?:\[|%5[bB])SSP_DATA(?:\]|%5[dD])"
)
_PLACEHOLDER: Final = b"[SSP_DATA]"  # where an appended parameter's value goes (a macro)
# Targets and parameters repeat (one landing page per campaign): recent answers are kept.
_PARTS: dict[tuple[bytes, bytes | None], tuple[bytes, ...] | None] = {}
_PARTS_MAX: Final = 4096


def token_parts(location: bytes, param: bytes | None) -> tuple[bytes, ...] | None:
    """``location`` cut where the click token goes (``token.join(parts)`` is the Location to
    send), or None when it takes no token. ``param``: the tracker's query parameter for it."""
    key = (location, param)
    try:
        return _PARTS[key]
    except KeyError:
        pass
    target = location
    if param:
        base, hash_sign, fragment = target.partition(b"#")
        # (nothing to add after a "?" or "&" that ends the query already)
        separator = b"" if base.endswith((b"?", b"&")) else b"&" if b"?" in base else b"?"
        target = base + separator + param + b"=" + _PLACEHOLDER + hash_sign + fragment
    parts = _MACRO.split(target)
    result = tuple(parts) if len(parts) > 1 else None
    if len(_PARTS) >= _PARTS_MAX:
        _PARTS.clear()
    _PARTS[key] = result
    return result


def without_token(location: bytes) -> bytes:
    """``location`` with its macros removed: for an answer that records no click (``HEAD``, a
    rejected tracker), so no visitor lands on a page with a macro left in its address."""
    return _MACRO.sub(b"", location)
