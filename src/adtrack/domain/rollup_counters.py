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
        if self.imps <= 0:
            return None
        return (Decimal(self.clicks) / Decimal(self.imps)).quantize(
            _CTR_PLACES, rounding=ROUND_HALF_EVEN
        )

    @property
    def cpm_micros(self) -> int | None:
        """Media cost per thousand impressions (micros, rounded half-up); None without imps."""
        if self.imps <= 0:
            return None
        return mul_ratio(self.media_cost_micros, 1000, self.imps)

    @classmethod
    def of(cls, values: Sequence[int]) -> Counters:
        return cls(*values)

    def is_zero(self) -> bool:
        return not any(self)

    def plus(self, other: tuple[int, ...]) -> Counters:
        """These counters and ``other`` (in the same order) added up."""
        return Counters(*[a + b for a, b in zip(self, other, strict=True)])
