"""Exact money: amounts are integer micro-units of the currency (1 unit = 1_000_000 micros).

Floats never hold money. Conversions happen only at the edges (API, CLI, exports, reports).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
_QUANTUM = Decimal("0.000001")


class MoneyError(ValueError):
    """A value that cannot be an amount of money."""


def to_micros(value: Decimal | int | str | float) -> int:
    """Convert currency units to integer micros, exactly.

    Floats are accepted only because JSON numbers arrive as floats in some clients; they are
    converted through their shortest repr (``2.5`` -> ``Decimal("2.5")``), never through binary
    arithmetic. More than six decimal places is refused rather than silently rounded.
    """
    if isinstance(value, bool):
        raise MoneyError("must be a number")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError("must be a decimal number") from exc
    if not dec.is_finite():
        raise MoneyError("must be a finite number")
    if dec.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN) != dec:
        raise MoneyError("has more than 6 decimal places")
    return int(dec * MICROS_PER_UNIT)


def from_micros(micros: int) -> Decimal:
    """Integer micros to a Decimal in currency units (exact)."""
    exact = (Decimal(micros) / MICROS_PER_UNIT).quantize(_QUANTUM)
    # normalize() alone would turn 10 into 1E+1; keep plain notation, without trailing zeros.
    return exact.quantize(Decimal(1)) if exact == exact.to_integral() else exact.normalize()


def format_micros(micros: int, places: int = 6) -> str:
    """Micros as a fixed-point decimal string, e.g. ``2500000 -> "2.500000"``."""
    if places == 6:  # the usual form, in one formatting step (reports format many of these)
        if micros >= 0:
            return "{}.{:06d}".format(*divmod(micros, MICROS_PER_UNIT))
        return "-{}.{:06d}".format(*divmod(-micros, MICROS_PER_UNIT))
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_UNIT)
    if places == 0:
        return f"{sign}{whole}"
    frac_str = f"{frac:06d}"[:places] if places <= 6 else f"{frac:06d}" + "0" * (places - 6)
    return f"{sign}{whole}.{frac_str}"


def mul_ratio(micros: int, numerator: int, denominator: int) -> int:
    """``micros * numerator / denominator`` rounded half-up, in integers only."""
    if denominator <= 0:
        raise MoneyError("denominator must be positive")
    product = micros * numerator
    q, r = divmod(product, denominator)
    return q + (1 if 2 * r >= denominator else 0)
