"""``BatchView``: a unit of work as a bulk write's checks see it.

A batch runs the same per-kind checks (``checks.py``) as single writes, item after item, in
one transaction; those checks look objects up one at a time (``uow.line_items.get(id)``).
The view answers these lookups from a cache filled a few hundred ids per query (``prime``),
and it already holds the batch's own items that passed their check (``stage``), so that
the items see each other: two new trackers with one code clash, an item sees the new
version of one changed earlier in the batch. Writes go to the real unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Generic, Self, TypeVar, cast

from adtrack.domain.model import (
    Advertiser,
    ConversionPixel,
    LineItem,
    PaymentRule,
    Placement,
    Publisher,
    Tracker,
    TrackerType,
)
from adtrack.services.ports import (
    AdvertiserRepository,
    CatalogueVersionRepository,
    ConversionPixelRepository,
    FilterKind,
    LineItemRepository,
    ListQuery,
    Page,
    PaymentRuleRepository,
    PlacementRepository,
    PublisherRepository,
    Repository,
    TrackerReference,
    TrackerRepository,
    UnitOfWork,
)

__all__ = ["BatchView"]

E = TypeVar("E")


class _CachedRepository(Generic[E]):
    """One kind's repository with ``get`` cached and the batch's staged objects on top.

    Every method of ``Repository`` is here; those the cache does not cover go to the real
    repository. The kinds' own queries are in the subclasses below (the view stands in for all
    of the kinds' repository protocols)."""

    def __init__(self, inner: Repository[E]) -> None:
        self._inner = inner
        self._found: dict[int, E | None] = {}
        self._staged: dict[int, E] = {}

    def prime(self, ids: Iterable[int]) -> None:
        missing = {i for i in ids if i not in self._found}
        if missing:
            found = self._inner.get_many(missing)
            for i in missing:
                self._found[i] = found.get(i)

    def stage(self, entity: E) -> None:
        self._staged[cast(int, getattr(entity, "id"))] = entity  # noqa: B009

    def staged(self) -> list[E]:
        return list(self._staged.values())

    def get(self, id: int, *, include_deleted: bool = False) -> E | None:
        if include_deleted:
            return self._inner.get(id, include_deleted=True)
        if id in self._staged:
            return self._staged[id]
        if id not in self._found:
            self._found[id] = self._inner.get(id)
        return self._found[id]

    def get_many(self, ids: Iterable[int]) -> dict[int, E]:
        wanted = set(ids)
        self.prime(wanted)
        return {i: e for i in wanted if (e := self.get(i)) is not None}

    def live_with_original_ids(self, original_ids: Iterable[int]) -> list[E]:
        return self._inner.live_with_original_ids(original_ids)

    def taken_ids(self, ids: Iterable[int]) -> set[int]:
        return self._inner.taken_ids(ids)

    def max_id(self) -> int:
        return self._inner.max_id()

    def add(self, entity: E) -> E:
        return self._inner.add(entity)

    def add_many(self, entities: Sequence[E]) -> None:
        self._inner.add_many(entities)

    def update(self, entity: E) -> None:
        self._inner.update(entity)

    def update_many(self, entities: Sequence[E]) -> None:
        self._inner.update_many(entities)

    def soft_delete(self, id: int, at: datetime) -> None:
        self._inner.soft_delete(id, at)

    def _with_staged(
        self, found: tuple[list[E], int], keep: Callable[[E], bool], limit: int
    ) -> tuple[list[E], int]:
        """A query's answer with the staged versions in place of the stored ones."""
        items, total = found
        staged = self._staged
        current = [staged.get(cast(int, getattr(e, "id")), e) for e in items]  # noqa: B009
        kept = [e for e in current if keep(e)]
        seen = {cast(int, getattr(e, "id")) for e in items}  # noqa: B009
        added = [e for i, e in staged.items() if i not in seen and keep(e)]
        total += len(kept) - len(items) + len(added)
        return (kept + added)[:limit], total

    # last: below here ``list`` would name this method, not the type
    def list(self, query: ListQuery) -> Page[E]:
        return self._inner.list(query)


class _CachedLineItems(_CachedRepository[LineItem]):
    def __init__(self, inner: LineItemRepository) -> None:
        super().__init__(inner)
        self._queries = inner

    def live_for_advertiser(self, advertiser_id: int, limit: int) -> tuple[list[LineItem], int]:
        return self._with_staged(
            self._queries.live_for_advertiser(advertiser_id, limit),
            lambda e: e.advertiser_id == advertiser_id,
            limit,
        )


class _CachedPlacements(_CachedRepository[Placement]):
    def __init__(self, inner: PlacementRepository) -> None:
        super().__init__(inner)
        self._queries = inner

    def live_for_publisher(self, publisher_id: int, limit: int) -> tuple[list[Placement], int]:
        return self._with_staged(
            self._queries.live_for_publisher(publisher_id, limit),
            lambda e: e.publisher_id == publisher_id,
            limit,
        )


class _CachedPaymentRules(_CachedRepository[PaymentRule]):
    def __init__(self, inner: PaymentRuleRepository) -> None:
        super().__init__(inner)
        self._queries = inner

    def base_for_publisher(self, publisher_id: int) -> PaymentRule | None:
        for rule in self._staged.values():
            if rule.publisher_id == publisher_id and rule.is_base:
                return rule
        return self._queries.base_for_publisher(publisher_id)

    def live_conditional_for_publisher(
        self, publisher_id: int, limit: int
    ) -> tuple[list[PaymentRule], int]:
        return self._with_staged(
            self._queries.live_conditional_for_publisher(publisher_id, limit),
            lambda e: e.publisher_id == publisher_id and not e.is_base,
            limit,
        )

    def live_filtering_on(
        self, kind: FilterKind, object_id: int, limit: int
    ) -> tuple[list[PaymentRule], int]:
        return self._with_staged(
            self._queries.live_filtering_on(kind, object_id, limit),
            lambda e: object_id in (e.advertiser_ids if kind == "advertiser" else e.line_item_ids),
            limit,
        )


class _CachedTrackers(_CachedRepository[Tracker]):
    def __init__(self, inner: TrackerRepository) -> None:
        super().__init__(inner)
        self._queries = inner

    def live_with_code(self, tracker_type: TrackerType, code: str) -> list[Tracker]:
        found = self._queries.live_with_code(tracker_type, code)
        items, _ = self._with_staged(
            (found, len(found)),
            lambda e: e.code == code and e.tracker_type is tracker_type,
            len(found) + len(self._staged),
        )
        return items

    def live_using(
        self, reference: TrackerReference, object_id: int, limit: int
    ) -> tuple[list[Tracker], int]:
        return self._with_staged(
            self._queries.live_using(reference, object_id, limit),
            lambda e: bool(getattr(e, reference) == object_id),
            limit,
        )


class _CachedConversionPixels(_CachedRepository[ConversionPixel]):
    def __init__(self, inner: ConversionPixelRepository) -> None:
        super().__init__(inner)
        self._queries = inner

    def live_with_code(self, code: str) -> list[ConversionPixel]:
        found = self._queries.live_with_code(code)
        items, _ = self._with_staged(
            (found, len(found)), lambda e: e.code == code, len(found) + len(self._staged)
        )
        return items

    def live_for_advertiser(
        self, advertiser_id: int, limit: int
    ) -> tuple[list[ConversionPixel], int]:
        return self._with_staged(
            self._queries.live_for_advertiser(advertiser_id, limit),
            lambda e: e.advertiser_id == advertiser_id,
            limit,
        )


class BatchView:
    """The unit of work ``uow`` (open, in its transaction) with cached lookups; see the module.

    Entering and leaving it does nothing: the transaction is the caller's."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.advertisers_cache = _CachedRepository[Advertiser](uow.advertisers)
        self.line_items_cache = _CachedLineItems(uow.line_items)
        self.publishers_cache = _CachedRepository[Publisher](uow.publishers)
        self.placements_cache = _CachedPlacements(uow.placements)
        self.payment_rules_cache = _CachedPaymentRules(uow.payment_rules)
        self.trackers_cache = _CachedTrackers(uow.trackers)
        self.conversion_pixels_cache = _CachedConversionPixels(uow.conversion_pixels)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        raise RuntimeError("a batch's checks do not commit; the batch's caller does")

    @property
    def advertisers(self) -> AdvertiserRepository:
        return self.advertisers_cache

    @property
    def line_items(self) -> LineItemRepository:
        return self.line_items_cache

    @property
    def publishers(self) -> PublisherRepository:
        return self.publishers_cache

    @property
    def placements(self) -> PlacementRepository:
        return self.placements_cache

    @property
    def payment_rules(self) -> PaymentRuleRepository:
        return self.payment_rules_cache

    @property
    def trackers(self) -> TrackerRepository:
        return self.trackers_cache

    @property
    def conversion_pixels(self) -> ConversionPixelRepository:
        return self.conversion_pixels_cache

    @property
    def catalogue_version(self) -> CatalogueVersionRepository:
        return self._uow.catalogue_version

    def cache_of(self, repository: Repository[E]) -> _CachedRepository[E]:
        """The cache standing for ``repository`` (one of this view's properties)."""
        caches: tuple[object, ...] = (
            self.advertisers_cache,
            self.line_items_cache,
            self.publishers_cache,
            self.placements_cache,
            self.payment_rules_cache,
            self.trackers_cache,
            self.conversion_pixels_cache,
        )
        for cache in caches:
            if cache is repository:  # so it holds the same kind: E
                return cast("_CachedRepository[E]", cache)
        raise ValueError("not a repository of this view")
