"""The ``ancost`` parameter: the media cost paid in the external system for one event.

Accepted: a plain decimal with ASCII digits and at most one dot (``2``, ``0.15``, ``.5``, ``3.``),
from 0 to 999999.999999. Digits beyond the sixth decimal place are accepted only when they are
zeros (``1.5000000`` is exact; ``0.0000001`` is not a whole number of micros and is refused
rather than rounded). Signs, exponents, ``NaN``/``inf``, spaces and anything else are invalid.

An empty value (``ancost=``) counts as absent; an unreplaced macro such as ``[ANCOST]`` is invalid.
Invalid values are ignored (the payment rule applies) and counted in a metric by the caller.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ANCOST_MAX_MICROS", "parse_ancost"]

ANCOST_MAX_MICROS: Final = 999_999_999_999  # 999999.999999 units


def _all_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# ancost values repeat (a campaign pays the same price): remember recent answers
_SEEN: dict[str, int | None] = {}
_SEEN_MAX = 4096


def parse_ancost(raw: str) -> int | None:
    """``raw`` as integer micros, or None when it is not a valid ancost."""
    try:
        return _SEEN[raw]
    except KeyError:
        pass
    micros = _parse(raw)
    if len(raw) <= 32:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        _SEEN[raw] = micros
    return micros


def _parse(raw: str) -> int | None:
    if len(raw) > 40:
        return None
    whole, dot, frac = raw.partition(".")
    if not whole and not frac:
        return None
    if whole and not _all_digits(whole):
        return None
    if frac:
        if not _all_digits(frac):
            return None
        if len(frac) > 6:
            if frac[6:].strip("0"):
                return None
            frac = frac[:6]
    elif dot and not whole:
        return None
    micros = int(whole or "0") * 1_000_000 + (int(frac.ljust(6, "0")) if frac else 0)
    if micros > ANCOST_MAX_MICROS:
        return None
    return micros
