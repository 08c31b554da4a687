"""How long the aggregator's conversion bookkeeping must be kept (its verdicts, and the order
ids they counted), and the setting's bounds (``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS``).

A verdict matters only while a later conversion could still be decided by it. One of the same
click (``min_minutes_per_conversion``: null, or up to 32,767 minutes) comes at most the longest
post-click window (90 days) after the click, since a click token is read no later, give or take
the clock skew it allows; and so at most that long after the conversion of the verdict. The
retention adds to that how far behind the aggregator may fall: a conversion is decided when the
aggregator reads it, against the verdicts kept then. Order ids have no such bound: one is kept
as long as the verdict of the conversion that counted it, and an order reported again after that
counts again (docs/conversions.md, "Retention").
"""

from __future__ import annotations

import math
from typing import Final

from adtrack.domain.click_tokens import MAX_CLOCK_SKEW_MICROS
from adtrack.domain.model import MIN_MINUTES_PER_CONVERSION_MAX, POST_CLICK_WINDOW_MAX_MINUTES

__all__ = [
    "DECIDING_MICROS",
    "DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS",
    "MIN_CONVERSION_DEDUP_RETENTION_DAYS",
]

_DAY_MICROS: Final = 86_400_000_000
# How long after a conversion a later one can still be decided by its verdict.
DECIDING_MICROS: Final = (
    max(POST_CLICK_WINDOW_MAX_MINUTES, MIN_MINUTES_PER_CONVERSION_MAX) * 60_000_000
    + MAX_CLOCK_SKEW_MICROS
)
# That span in whole days (91): the least retention there may be.
MIN_CONVERSION_DEDUP_RETENTION_DAYS: Final = math.ceil(DECIDING_MICROS / _DAY_MICROS)
# The default leaves the aggregator 9 days of backlog.
DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS: Final = 100
