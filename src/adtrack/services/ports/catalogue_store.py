"""What the catalogue service needs from storage: repositories and a unit of work.

The SQL adapter (``adapters/sql/unit_of_work.py``) implements these Protocols. Repositories
only store and fetch; every rule lives in the domain and is applied by the service.

Conventions shared by all repositories:
- "live" means not soft-deleted (``deleted_at`` is NULL); ``get`` returns live rows only unless
  ``include_deleted`` is set, and lists never show deleted rows;
- ``add`` receives an entity whose ``id`` is ``0`` and returns it with the id the store chose;
  ``add_many`` (bulk) stores entities with the ids the service chose;
- datetimes come back timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Generic, Literal, Protocol, Self, TypeVar

from adtrack.domain.model import (
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    Publisher,
    State,
    Tracker,
    TrackerType,
)

E = TypeVar("E")

# The columns a list may be filtered on, per kind (exact match).
FilterValue = int | str


@dataclass
class Page(Generic[E]):
    """One page of a list: ``items`` from ``offset``, and how many match in all."""

    items: list[E]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class ListQuery:
    """What to list: a search text, a state, exact-match filters, and a window.

    ``q`` matches name, code or original code (an imported object's code on the platform it
    came from) as a case-insensitive substring, or the id or original id when it is a number.
    """

    q: str | None = None
    state: State | None = None
    filters: Mapping[str, FilterValue] = field(default_factory=dict)
    offset: int = 0
    limit: int = 50


class Repository(Protocol[E]):
    def get(self, id: int, *, include_deleted: bool = False) -> E | None: ...

    def get_many(self, ids: Iterable[int]) -> dict[int, E]:
        """The live objects among ``ids``, by id."""
        ...

    def taken_ids(self, ids: Iterable[int]) -> set[int]:
        """Those of ``ids`` some row has, deleted or not (or that no row could have)."""
        ...

    def max_id(self) -> int:
        """The largest id of any row, deleted or not (0 when there is none)."""
        ...

    def live_with_original_ids(self, original_ids: Iterable[int]) -> list[E]:
        """The live objects imported with one of these original ids."""
        ...

    def add(self, entity: E) -> E: ...

    def add_many(self, entities: Sequence[E]) -> None:
        """Store new objects with the ids they carry (free ids: above ``max_id`` or not
        ``taken_ids``, found in the same transaction after the catalogue version's bump)."""
        ...

    def update_many(self, entities: Sequence[E]) -> None:
        """Store new versions of objects, each by its id."""
        ...

    def update(self, entity: E) -> None: ...

    def soft_delete(self, id: int, at: datetime) -> None: ...

    def list(self, query: ListQuery) -> Page[E]: ...


class AdvertiserRepository(Repository[Advertiser], Protocol):
    pass


class LineItemRepository(Repository[LineItem], Protocol):
    def live_for_advertiser(self, advertiser_id: int, limit: int) -> tuple[list[LineItem], int]:
        """Up to ``limit`` live line items of the advertiser, and how many there are in all."""
        ...


class PublisherRepository(Repository[Publisher], Protocol):
    pass


class PlacementRepository(Repository[Placement], Protocol):
    def live_for_publisher(self, publisher_id: int, limit: int) -> tuple[list[Placement], int]:
        """Up to ``limit`` live placements of the publisher, and how many there are in all."""
        ...


FilterKind = Literal["advertiser", "line_item"]


class PaymentRuleRepository(Repository[PaymentRule], Protocol):
    def base_for_publisher(self, publisher_id: int) -> PaymentRule | None:
        """The publisher's live base rule, if any."""
        ...

    def live_conditional_for_publisher(
        self, publisher_id: int, limit: int
    ) -> tuple[list[PaymentRule], int]:
        """Up to ``limit`` live non-base rules of the publisher, and the total count."""
        ...

    def live_filtering_on(
        self, kind: FilterKind, object_id: int, limit: int
    ) -> tuple[list[PaymentRule], int]:
        """Live rules whose advertiser or line-item filter lists ``object_id``."""
        ...


TrackerReference = Literal[
    "advertiser_id", "line_item_id", "publisher_id", "placement_id", "payment_rule_id"
]


class TrackerRepository(Repository[Tracker], Protocol):
    def live_with_code(self, tracker_type: TrackerType, code: str) -> list[Tracker]:
        """Live trackers of that type whose code is exactly ``code``."""
        ...

    def live_using(
        self, reference: TrackerReference, object_id: int, limit: int
    ) -> tuple[list[Tracker], int]:
        """Up to ``limit`` live trackers whose ``reference`` column is ``object_id``, and the
        total count (ordered by id)."""
        ...


class ConversionPixelRepository(Repository[ConversionPixel], Protocol):
    def live_with_code(self, code: str) -> list[ConversionPixel]:
        """Live conversion pixels whose code is exactly ``code``."""
        ...

    def live_for_advertiser(
        self, advertiser_id: int, limit: int
    ) -> tuple[list[ConversionPixel], int]:
        """Up to ``limit`` live pixels of the advertiser, and how many there are in all."""
        ...


class CatalogueVersionRepository(Protocol):
    def bump(self, at: datetime) -> int:
        """Add one to the catalogue version (creating the row if missing); return the new value.

        The SQL adapter does this first in every write transaction: the row lock it takes
        serialises concurrent catalogue writes, so checks such as code uniqueness cannot race.
        """
        ...

    def current(self) -> int:
        """The current version (0 when nothing was ever written)."""
        ...


class Transaction(Protocol):
    """One transaction. Leaving the ``with`` block without ``commit()`` rolls back."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class UnitOfWork(Transaction, Protocol):
    """The catalogue's repositories in one transaction."""

    # Read-only in the Protocol so implementations may use their concrete repository types.
    @property
    def advertisers(self) -> AdvertiserRepository: ...

    @property
    def line_items(self) -> LineItemRepository: ...

    @property
    def publishers(self) -> PublisherRepository: ...

    @property
    def placements(self) -> PlacementRepository: ...

    @property
    def payment_rules(self) -> PaymentRuleRepository: ...

    @property
    def trackers(self) -> TrackerRepository: ...

    @property
    def conversion_pixels(self) -> ConversionPixelRepository: ...

    @property
    def catalogue_version(self) -> CatalogueVersionRepository: ...
