"""The reporting read side's stores: sums over the rollup tables and catalogue names for reports,
and the saved reports.

Adapters: ``adapters/sql/rollup_reads.py``, ``adapters/sql/saved_report_store.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["BucketSums", "RollupReads", "SavedReport", "SavedReportStore", "Terms"]

# A UTC month (its first day), day (``rollup_daily.day``) or hour (``rollup_hourly.hour``),
# aware, -> how its rows add into a report's buckets: ``[(bucket index, +1 or -1)]`` (see
# ``reporting/plan.py``).
Terms = dict[datetime, list[tuple[int, int]]]
# (bucket index, the grouped dimensions' values) -> the summed counters, in ``Counters`` order.
# Values are ids, or texts for the audience columns ("" for unknown).
BucketSums = dict[tuple[int, tuple[int | str, ...]], tuple[int, ...]]


class RollupReads(Protocol):
    """What the report engine reads: integer sums of the rollups, and catalogue names."""

    def bucket_sums(
        self,
        month_terms: Terms,
        day_terms: Terms,
        hour_terms: Terms,
        group_by: Sequence[str],
        filters: Mapping[str, Sequence[int | str]],
    ) -> BucketSums:
        """The counters of ``rollup_daily`` over the days of ``day_terms`` and of
        ``rollup_hourly`` over the hours of ``hour_terms`` (and over the months of
        ``month_terms``: monthly rows where the rollups keep them, else the months' days),
        added into buckets with the terms' signs, per bucket and values of the ``group_by``
        key columns (e.g. ``line_item_id``, ``country``); only rows whose key column ``c`` is
        one of ``filters[c]``. Columns of the audience (country; device type, OS, browser) are
        read from the audience rollups of their family, which hold imp type, advertiser and
        line item besides. Groups whose sums net to zero may be present."""
        ...

    def names(self, column: str, ids: Sequence[int]) -> dict[int, str]:
        """The names of the catalogue objects ``ids`` of the key column ``column`` (e.g.
        ``advertiser_id``), soft-deleted ones included; ids that do not exist are left out."""
        ...


@dataclass(frozen=True)
class SavedReport:
    """A saved report definition and its schedule, as stored."""

    id: int
    name: str
    owner_id: int | None
    definition: dict[str, object]
    schedule: str
    weekday: int | None
    hour: int
    timezone: str
    recipients: tuple[str, ...]
    attachment_format: str
    last_sent_at: datetime | None
    last_status: str | None
    last_error: str | None
    created_at: datetime
    last_modified: datetime


class SavedReportStore(Protocol):
    """Where saved reports are kept. ``values`` hold checked fields by name (``definition`` a
    JSON object, ``recipients`` a list of addresses, the rest as in :class:`SavedReport`)."""

    def insert(self, values: Mapping[str, object]) -> int:
        """Store a new saved report; returns its id."""
        ...

    def get(self, report_id: int) -> SavedReport | None: ...

    def list_all(self) -> list[SavedReport]:
        """Every saved report, by id."""
        ...

    def update(self, report_id: int, values: Mapping[str, object]) -> None: ...

    def delete(self, report_id: int) -> None: ...

    def set_sent(self, report_id: int, sent_at: datetime) -> None:
        """Record that a delivery starts now (``send_now``)."""
        ...

    def claim(self, report_id: int, occurrence: datetime, now: datetime) -> bool:
        """Mark the report sent at ``now`` unless it was sent at or after ``occurrence``, in
        one conditional write; True when this caller got it (two processes never both do)."""
        ...

    def set_status(self, report_id: int, status: str, error: str | None) -> None:
        """Record how the latest delivery went."""
        ...
