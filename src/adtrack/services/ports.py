"""The interfaces adapters implement, for the code that must not import them (the collector,
the reporting read side).

Each Protocol names what its user needs from storage and nothing else; the adapter behind it is
chosen by the composition root (``bootstrap.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from adtrack.domain.model import LineItem, PaymentRule, TrackerType

# One live tracker as stored: (id, tracker type value, code, state value, advertiser id, line item
# id, publisher id, placement id, own payment rule id, landing page URL). A plain tuple, not an
# entity: unpacking 100,000 of them is a large part of a full load.
TrackerRow = tuple[int, str, str | None, str, int, int, int, int | None, int | None, str | None]


class CatalogueVersion(NamedTuple):
    version: int  # bumped by every catalogue write
    trimmed_through: int  # the change log holds no version at or below this one


@dataclass(frozen=True, slots=True)
class TrackerInputs:
    """Live trackers with everything that prices and routes them."""

    trackers: Sequence[TrackerRow]
    line_items: Mapping[int, LineItem]  # the live line items of the trackers
    # the live rules of the trackers' publishers and the trackers' own rules, in store order
    payment_rules: Sequence[PaymentRule]
    # each advertiser's stored redirect policy and landing domains, as stored (unchecked)
    advertiser_redirects: Mapping[int, tuple[object, object]]


@dataclass(frozen=True, slots=True)
class TrackerCatalogueLoad:
    """The whole live catalogue, read at ``version``."""

    version: int  # read before the rest: a write after it is applied later
    inputs: TrackerInputs
    rule_publishers: dict[int, int]  # every live payment rule's publisher


@dataclass(frozen=True, slots=True)
class TrackerCatalogueChanges:
    """What the change log's rows of some versions touch."""

    # every live tracker that depends on a changed row (see ``TrackerCatalogue.changes``)
    inputs: TrackerInputs
    tracker_ids: frozenset[int]  # changed trackers; those not in ``inputs`` are gone
    rule_ids: frozenset[int]  # changed payment rules
    rule_publishers: Mapping[int, int]  # the publisher of each changed rule that is still live


class TrackerCatalogue(Protocol):
    """The collector's read-only view of the tracker catalogue."""

    def version(self) -> CatalogueVersion: ...

    def load(self) -> TrackerCatalogueLoad: ...

    def changes(
        self, after: int, through: int, *, max_changes: int, rule_publishers: Mapping[int, int]
    ) -> TrackerCatalogueChanges | None:
        """The trackers changed in versions (after, through]: a changed tracker itself; every
        tracker of a changed line item, advertiser, publisher or placement; every tracker priced
        by a changed payment rule (its own rule, or one of its publisher's, where the publisher
        is the rule's now or the one in ``rule_publishers``).

        None when the change log cannot say (trimmed meanwhile, a version without change rows)
        or holds more than ``max_changes`` rows (one full load is then cheaper)."""
        ...

    def find_by_id(self, tracker_id: int) -> TrackerInputs:
        """The live tracker ``tracker_id`` (no tracker if there is none)."""
        ...

    def find_by_code(self, tracker_type: TrackerType, code: str) -> TrackerInputs:
        """A live tracker of ``tracker_type`` with ``code`` (no tracker if there is none)."""
        ...


# =============================================================================================
# The reporting read side (``reporting/``): sums over the rollup tables, saved reports.
# Adapters: ``adapters/sql/rollup_reads.py``, ``adapters/sql/saved_report_store.py``.
# =============================================================================================

# A UTC day (``rollup_daily.day``) or hour (``rollup_hourly.hour``), aware, -> how its rows add
# into a report's buckets: ``[(bucket index, +1 or -1)]`` (see ``reporting/plan.py``).
Terms = dict[datetime, list[tuple[int, int]]]
# (bucket index, the grouped dimensions' ids) -> the summed counters, in ``Counters`` order.
BucketSums = dict[tuple[int, tuple[int, ...]], tuple[int, ...]]


class RollupReads(Protocol):
    """What the report engine reads: integer sums of the rollups, and catalogue names."""

    def bucket_sums(
        self,
        day_terms: Terms,
        hour_terms: Terms,
        group_by: Sequence[str],
        filters: Mapping[str, Sequence[int]],
    ) -> BucketSums:
        """The counters of ``rollup_daily`` over the days of ``day_terms`` and of
        ``rollup_hourly`` over the hours of ``hour_terms``, added into buckets with the terms'
        signs, per bucket and ids of the ``group_by`` key columns (e.g. ``line_item_id``);
        only rows whose key column ``c`` is one of ``filters[c]``. Groups whose sums net to
        zero may be present."""
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
    definition: dict[str, Any]
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

    def insert(self, values: Mapping[str, Any]) -> int:
        """Store a new saved report; returns its id."""
        ...

    def get(self, report_id: int) -> SavedReport | None: ...

    def list_all(self) -> list[SavedReport]:
        """Every saved report, by id."""
        ...

    def update(self, report_id: int, values: Mapping[str, Any]) -> None: ...

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
