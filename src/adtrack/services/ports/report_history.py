"""Where imported report history is kept: the catalogue ids a report's rows refer to, the
imports made so far (by file hash, with what each added), and the one transaction that adds an
import's rows to the rollups (or takes them out again).

Adapter: ``adapters/sql/report_history_store.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from adtrack.domain.rollup_counters import Counters

__all__ = [
    "HistoryImport",
    "HistoryKey",
    "HistoryRowRecord",
    "HistorySpan",
    "ImportedLineItem",
    "ImportedPlacement",
    "NewHistoryImport",
    "ReportHistoryStore",
    "SPAN_MARGIN",
    "earlier_imports",
]

# A stored row covers at most a local day (25 hours), so an earlier import's rows that can
# overlap rows in [start, end) all start in [start - SPAN_MARGIN, end).
SPAN_MARGIN = timedelta(days=2)


class HistoryKey(NamedTuple):
    """Where imported counts go: a rollup key of adtrack ids without a tracker (the rollups
    hold them with ``tracker_id`` 0)."""

    hour: datetime  # whole UTC hour
    imp_type: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int  # 0 = none
    payment_rule_id: int  # 0 = none


@dataclass(frozen=True, slots=True)
class HistoryRowRecord:
    key: HistoryKey
    covers_until: datetime  # the counts cover [key.hour, covers_until)
    counters: Counters


@dataclass(frozen=True, slots=True)
class HistorySpan:
    """A stored row of an earlier import, as far as overlap checks need it."""

    import_id: int
    key: HistoryKey
    covers_until: datetime


@dataclass(frozen=True, slots=True)
class ImportedLineItem:
    id: int
    advertiser_id: int
    advertiser_original_id: int  # the advertiser's id on the original platform


@dataclass(frozen=True, slots=True)
class ImportedPlacement:
    id: int
    publisher_id: int


@dataclass(frozen=True, slots=True)
class NewHistoryImport:
    file_name: str
    sha256: str
    timezone: str
    granularity: str  # "hour" | "day"
    lines: int
    first_hour: datetime | None
    last_hour: datetime | None
    totals: Counters
    imported_by: str


@dataclass(frozen=True, slots=True)
class HistoryImport(NewHistoryImport):
    id: int
    created_at: datetime


class ReportHistoryStore(Protocol):
    """Blocking calls (run them in a thread from async code)."""

    def line_items(self, original_ids: Collection[int]) -> Mapping[int, ImportedLineItem]:
        """The line items the report's ids refer to (by the id the original platform gave),
        soft-deleted ones included: history may be about what no longer runs."""
        ...

    def publishers(self, original_ids: Collection[int]) -> Mapping[int, int]:
        """Original publisher id -> adtrack publisher id."""
        ...

    def placements(self, original_ids: Collection[int]) -> Mapping[int, ImportedPlacement]:
        """Original placement id -> the placement (with its publisher's adtrack id)."""
        ...

    def find_by_hash(self, sha256: str) -> HistoryImport | None: ...

    def spans_between(
        self, start: datetime, end: datetime, line_item_ids: Collection[int]
    ) -> list[HistorySpan]:
        """Rows of earlier imports for these line items starting in ``[start, end)``."""
        ...

    def add(self, new: NewHistoryImport, rows: Sequence[HistoryRowRecord]) -> HistoryImport:
        """Record the import and add its rows to the hourly and daily rollups, in one
        transaction. Raises ``Conflict`` when a file with the same hash was imported meanwhile."""
        ...

    def imports(self) -> list[HistoryImport]:
        """Every import, newest first."""
        ...

    def remove(self, import_id: int) -> HistoryImport:
        """Take an import's rows out of the rollups and forget it, in one transaction. Raises
        ``NotFound``."""
        ...


def earlier_imports(
    rows: Sequence[tuple[HistoryKey, datetime]], spans: Iterable[HistorySpan]
) -> list[int | None]:
    """For each row (its key and the end of the time it covers), the id of an earlier import
    holding part of that time under the same key but the hour, or None. The one definition of
    "the same history imported twice", which the service reports by line and the store checks
    again inside its transaction."""
    by_key: dict[tuple[int, ...], list[tuple[datetime, datetime, int]]] = {}
    for span in spans:
        by_key.setdefault(tuple(span.key[1:]), []).append(
            (span.key.hour, span.covers_until, span.import_id)
        )
    return [
        next(
            (
                import_id
                for lo, hi, import_id in by_key.get(tuple(key[1:]), ())
                if lo < covers_until and key.hour < hi
            ),
            None,
        )
        for key, covers_until in rows
    ]
