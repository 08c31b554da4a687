"""What a report gives back: rows per bucket and group, and the totals.

Money stays in integer micros in :class:`Counters`; formatting to decimal strings happens at the
edge (``formats.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from adtrack.domain.model import ImpType
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.request import ReportRequest

__all__ = ["DimensionValue", "Report", "ReportRow", "imp_type_label"]


# Result rows are NamedTuples rather than dataclasses (as Counters): tuples of plain values drop
# out of the garbage collector's bookkeeping, which matters when a report builds tens of
# thousands of rows.
class DimensionValue(NamedTuple):
    dimension: str
    id: int | str  # an id; the audience dimensions' text ("" for unknown)
    # the name (imp_type: "9 External Impression"); None if unknown / 0. The audience
    # dimensions: the text itself, or "Unknown".
    label: str | None


class ReportRow(NamedTuple):
    interval_start: datetime  # aware, in the report timezone
    dimensions: tuple[DimensionValue, ...]
    counters: Counters


@dataclass(frozen=True)
class Report:
    request: ReportRequest
    rows: list[ReportRow]
    totals: Counters


def imp_type_label(imp_type: int) -> str | None:
    try:
        kind = ImpType(imp_type)
    except ValueError:
        return None
    return f"{kind.value} {kind.label}"
