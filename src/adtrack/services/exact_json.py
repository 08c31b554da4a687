"""JSON bytes with exact decimals: a ``Decimal`` is written as its fixed-point text
(``999999.999999``, never ``1E+6``), so an amount never passes through a binary float. Used by
the API's responses and the CLI's ``--json`` output.
"""

from __future__ import annotations

from decimal import Decimal

import orjson

__all__ = ["dumps"]


def _decimal_fragment(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f").encode("ascii"))
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def dumps(content: object) -> bytes:
    """JSON bytes with exact decimals."""
    return orjson.dumps(content, default=_decimal_fragment)
