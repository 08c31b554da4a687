"""What a rollup row counts: the one list of the rollup tables' sums, the aggregator's deltas
and the reports' rows and totals, with the metrics derived from them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple, TypeVar

from adtrack.domain.money import mul_ratio

__all__ = ["CONVERSION_PIXEL_SUMS", "Counters", "add_counters"]

_RATE_PLACES = Decimal("0.000001")  # ctr, the viewability and conversion rates: six places


def _rate(part: int, whole: int) -> Decimal | None:
    """part / whole rounded half-even to six places; None when ``whole`` is not positive."""
    if whole <= 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_RATE_PLACES, rounding=ROUND_HALF_EVEN)


class Counters(NamedTuple):
    """Summed counters of a rollup row (or of a report's row or totals).

    Valid events add to ``imps`` (imp_type 9) or ``clicks`` (10) and to the money; invalid ones
    only to ``invalid_imps`` / ``invalid_clicks``. Money in integer micro-units. Viewability
    beacons add each valid impression once to ``view_measured_imps`` (its script could observe
    the creative) and once to ``viewable_imps`` (MRC viewable, which implies measured).
    Conversions (11) that are attributed, valid and counted (not a duplicate) add to
    ``conversions``, to ``post_click_conversions`` or ``post_view_conversions``, and their
    revenue to ``conversion_revenue_micros`` (not to the booked revenue of the impressions and
    clicks).
    """

    imps: int = 0
    clicks: int = 0
    invalid_imps: int = 0
    invalid_clicks: int = 0
    media_cost_micros: int = 0
    booked_revenue_micros: int = 0
    conversions: int = 0
    post_click_conversions: int = 0
    post_view_conversions: int = 0
    conversion_revenue_micros: int = 0
    # last: the fold sums the others, and the sink adds these from the beacons it counts
    viewable_imps: int = 0
    view_measured_imps: int = 0

    @property
    def profit_micros(self) -> int:
        return self.booked_revenue_micros - self.media_cost_micros

    @property
    def ctr(self) -> Decimal | None:
        """clicks / imps, rounded to 6 decimal places; None without impressions."""
        return _rate(self.clicks, self.imps)

    @property
    def viewability_rate(self) -> Decimal | None:
        """viewable_imps / view_measured_imps (6 places); None without measured impressions."""
        return _rate(self.viewable_imps, self.view_measured_imps)

    @property
    def view_measurement_rate(self) -> Decimal | None:
        """view_measured_imps / imps (6 places); None without impressions."""
        return _rate(self.view_measured_imps, self.imps)

    @property
    def cpm_micros(self) -> int | None:
        """Media cost per thousand impressions (micros, rounded half-up); None without imps."""
        if self.imps <= 0:
            return None
        return mul_ratio(self.media_cost_micros, 1000, self.imps)

    @property
    def cpa_micros(self) -> int | None:
        """Media cost per conversion (micros, rounded half-up); None without conversions."""
        if self.conversions <= 0:
            return None
        return mul_ratio(self.media_cost_micros, 1, self.conversions)

    @property
    def conversion_rate(self) -> Decimal | None:
        """conversions / clicks, rounded to 6 decimal places; None without clicks."""
        return _rate(self.conversions, self.clicks)

    @property
    def roas(self) -> Decimal | None:
        """Conversion revenue / media cost, rounded to 6 decimal places; None without cost."""
        return _rate(self.conversion_revenue_micros, self.media_cost_micros)

    @classmethod
    def of(cls, values: Sequence[int]) -> Counters:
        return cls(*values)

    def is_zero(self) -> bool:
        return not any(self)

    def plus(self, other: tuple[int, ...]) -> Counters:
        """These counters and ``other`` (in the same order) added up."""
        return Counters(*[a + b for a, b in zip(self, other, strict=True)])


# The counters kept per conversion pixel (the conversion pixel rollups): a conversion's own,
# the same as it adds to the rollups without a pixel. Impressions, clicks and their money have
# no pixel, so nothing derived from them (cpa, conversion_rate, roas) is reported per pixel.
CONVERSION_PIXEL_SUMS: tuple[str, ...] = (
    "conversions",
    "post_click_conversions",
    "post_view_conversions",
    "conversion_revenue_micros",
)
if not set(CONVERSION_PIXEL_SUMS) <= set(Counters._fields):
    raise RuntimeError("the conversion pixel sums must be counters")


_Key = TypeVar("_Key")


def add_counters(totals: dict[_Key, Counters], key: _Key, counts: Counters) -> None:
    """Add ``counts`` to ``totals[key]`` (which they start if it is missing)."""
    total = totals.get(key)
    totals[key] = counts if total is None else total.plus(counts)
