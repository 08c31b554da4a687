"""The collector's read-only view of the tracker catalogue, and the records it loads.

Adapter: ``adapters/sql/tracker_catalogue.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from adtrack.domain.model import ConversionPixel, LineItem, PaymentRule, TrackerType

# One live tracker as stored: (id, tracker type value, code, state value, advertiser id, line item
# id, publisher id, placement id, own payment rule id, landing page URL, click token parameter).
# A plain tuple, not an entity: unpacking 100,000 of them is a large part of a full load.
TrackerRow = tuple[
    int, str, str | None, str, int, int, int, int | None, int | None, str | None, str | None
]


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
    # the trackers' advertisers that set conversion cookies (``Advertiser.conversion_cookies``)
    cookie_advertisers: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class TrackerCatalogueLoad:
    """The whole live catalogue, read at ``version``."""

    version: int  # read before the rest: a write after it is applied later
    inputs: TrackerInputs
    rule_publishers: dict[int, int]  # every live payment rule's publisher
    pixels: Sequence[ConversionPixel] = ()  # every live conversion pixel (``/sspx``)
    # the pixels' advertisers that set conversion cookies (their ``/px`` reads them)
    pixel_cookie_advertisers: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class TrackerCatalogueChanges:
    """What the change log's rows of some versions touch."""

    # every live tracker that depends on a changed row (see ``TrackerCatalogue.changes``)
    inputs: TrackerInputs
    tracker_ids: frozenset[int]  # changed trackers; those not in ``inputs`` are gone
    rule_ids: frozenset[int]  # changed payment rules
    rule_publishers: Mapping[int, int]  # the publisher of each changed rule that is still live
    pixel_ids: frozenset[int] = frozenset()  # changed conversion pixels
    pixels: Sequence[ConversionPixel] = ()  # those still live, as they are now
    pixel_cookie_advertisers: frozenset[int] = frozenset()  # as in TrackerCatalogueLoad


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
        is the rule's now or the one in ``rule_publishers``); and the changed conversion pixels
        and every pixel of a changed advertiser.

        None when the change log cannot say (trimmed meanwhile, a version without change rows)
        or holds more than ``max_changes`` rows (one full load is then cheaper)."""
        ...

    def find_by_id(self, tracker_id: int) -> TrackerInputs:
        """The live tracker ``tracker_id`` (no tracker if there is none)."""
        ...

    def find_by_code(self, tracker_type: TrackerType, code: str) -> TrackerInputs:
        """A live tracker of ``tracker_type`` with ``code`` (no tracker if there is none)."""
        ...
