"""What a rollup row counts: the one list of the rollup tables' sums, the aggregator's deltas
and the reports' totals."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Counters"]


class Counters(NamedTuple):
    """Summed counters of a rollup row (or of a report's row or totals).

    Valid events add to ``imps`` (imp_type 9) or ``clicks`` (10) and to the money; invalid ones
    only to ``invalid_imps`` / ``invalid_clicks``. Money in integer micro-units.
    """

    imps: int = 0
    clicks: int = 0
    invalid_imps: int = 0
    invalid_clicks: int = 0
    media_cost_micros: int = 0
    booked_revenue_micros: int = 0

    def plus(self, other: tuple[int, ...]) -> Counters:
        """These counters and ``other`` (in the same order) added up."""
        return Counters(*[a + b for a, b in zip(self, other, strict=True)])
