"""What a rollup row counts: the one list of the rollup tables' sums, the aggregator's deltas
and the reports' rows and totals, with the metrics derived from them."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from adtrack.domain.money import mul_ratio

__all__ = ["Counters"]

_CTR_PLACES = Decimal("0.000001")


class Counters(NamedTuple):
    """Summed counters of a rollup row (or of a report's row or totals).

    Valid events add to ``imps`` (imp_type 9) or ``clicks`` (10) and to the money; invalid ones
    only to ``invalid_imps`` / ``invalid_clicks``. Conversions (11) that are attributed, valid
    and counted (not a duplicate) add to ``conversions``, to ``post_click_conversions`` or
    ``post_view_conversions``, and their revenue to ``conversion_revenue_micros`` (not to the
    booked revenue of the impressions and clicks). Money in integer micro-units.
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

    @property
    def profit_micros(self) -> int:
        return self.booked_revenue_micros - self.media_cost_micros

    @property
    def ctr(self) -> Decimal | None:
        """clicks / imps, rounded to 6 decimal places; None without impressions."""
        return _ratio(self.clicks, self.imps)

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
        return _ratio(self.conversions, self.clicks)

    @property
    def roas(self) -> Decimal | None:
        """Conversion revenue / media cost, rounded to 6 decimal places; None without cost."""
        return _ratio(self.conversion_revenue_micros, self.media_cost_micros)

    @classmethod
    def of(cls, values: Sequence[int]) -> Counters:
        return cls(*values)

    def is_zero(self) -> bool:
        return not any(self)

    def plus(self, other: tuple[int, ...]) -> Counters:
        """These counters and ``other`` (in the same order) added up."""
        return Counters(*[a + b for a, b in zip(self, other, strict=True)])


def _ratio(part: int, whole: int) -> Decimal | None:
    """``part / whole`` exactly, rounded half-even to 6 decimal places; None when ``whole`` is
    not positive."""
    if whole <= 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(_CTR_PLACES, rounding=ROUND_HALF_EVEN)
