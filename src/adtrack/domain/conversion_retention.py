"""How long the aggregator's conversion bookkeeping must be kept (its verdicts, and the order
ids they counted), and the setting's bounds (``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS``).

A verdict matters only while a later conversion could still be decided by it. One of the same
click (``min_minutes_per_conversion``: null, or up to 32,767 minutes) comes at most the longest
post-click window (90 days) after the click, since a click token is read no later (give or take
the minutes of clock skew it allows); and so at most that long after the conversion of the
verdict. The retention adds to that how far behind the aggregator may fall: a conversion is
decided when the aggregator reads it, against the verdicts kept then. Order ids have no such
bound: one is kept as long as the verdict of the conversion that counted it, and an order
reported again after that counts again (docs/conversions.md, "Retention").
"""

from __future__ import annotations

import math
from typing import Final

from adtrack.domain.model import MIN_MINUTES_PER_CONVERSION_MAX, POST_CLICK_WINDOW_MAX_MINUTES

__all__ = [
    "DECIDING_MICROS",
    "DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS",
    "MIN_CONVERSION_DEDUP_RETENTION_DAYS",
]

_DAY_MICROS: Final = 86_400_000_000
# How long after a conversion a later one can still be decided by its verdict (but for the
# minutes of clock skew a click token may have).
DECIDING_MICROS: Final = (
    max(POST_CLICK_WINDOW_MAX_MINUTES, MIN_MINUTES_PER_CONVERSION_MAX) * 60_000_000
)
# That span in whole days and one more (91): the least retention there may be. The day covers
# the click token's clock skew (5 minutes) and a backlog of the aggregator shorter than the rest.
MIN_CONVERSION_DEDUP_RETENTION_DAYS: Final = math.ceil(DECIDING_MICROS / _DAY_MICROS) + 1
# The default leaves the aggregator 9 days of backlog.
DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS: Final = 100
