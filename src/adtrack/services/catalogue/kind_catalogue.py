"""``KindCatalogue[E]``: create, get, update, (soft-)delete and list one kind of catalogue object.

Each write runs in one transaction that first bumps the catalogue version (collectors poll it),
then loads what the rules need, checks them on the merged result and stores. The bulk writes
(``create_many``, ``update_many``, ``deactivate_many``) do the same for many objects in one
transaction and one version: every item is checked as a single write would be (seeing the
items before it), and one refused item refuses the batch (``BatchRefused``, naming each
refused item and its field); the ``..._in`` forms run inside a caller's transaction (an import
of several kinds). What differs per
kind is data (its ``EntitySpec``) and two functions: the check run before a create or update
stores, and the check run before a delete (``checks.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Generic, TypeVar

from adtrack.domain.errors import DomainError, NotFound, ValidationError
from adtrack.domain.model import State
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import ID_MAX, clean_enum, clean_id
from adtrack.services.catalogue.batch_view import BatchView
from adtrack.services.catalogue.batches import Refusals, allocate_ids, prime_references
from adtrack.services.catalogue.entity_specs import EntitySpec
from adtrack.services.ports import ListQuery, Page, UnitOfWork

__all__ = ["MAX_PAGE_SIZE", "Check", "DeleteCheck", "KindCatalogue", "is_id"]

E = TypeVar("E")

MAX_PAGE_SIZE = 1000

# A check receives the open unit of work, the entity about to be stored, the attributes the
# request set, and the stored version (None on create); it returns the entity to store.
Check = Callable[[UnitOfWork, E, frozenset[str], E | None], E]
# A delete check receives the open unit of work and the stored entity; it raises to refuse.
DeleteCheck = Callable[[UnitOfWork, E], None]


def _no_check(uow: UnitOfWork, entity: E, given: frozenset[str], before: E | None) -> E:
    return entity


def _no_delete_check(uow: UnitOfWork, entity: object) -> None:
    return None


def is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX


class KindCatalogue(Generic[E]):
    """The use cases of one kind of catalogue object.

    ``uow_factory`` returns a fresh unit of work per call; ``clock`` gives the current time
    (aware; naive values are taken as UTC).
    """

    def __init__(
        self,
        spec: EntitySpec[E],
        uow_factory: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        *,
        check: Check[E] = _no_check,
        delete_check: DeleteCheck[E] = _no_delete_check,
    ) -> None:
        self.spec = spec
        self._uow_factory = uow_factory
        self._clock = clock
        self._check = check
        self._delete_check = delete_check

    def create(self, data: Mapping[str, object]) -> E:
        spec = self.spec
        values = spec.clean(data, creating=True)
        given = frozenset(values)
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            start = {**spec.placeholders, **values}
            entity = spec.entity(id=0, created_at=now, last_modified=now, **start)
            entity = self._check(uow, entity, given, None)
            entity = spec.repository(uow).add(entity)
            uow.commit()
        return entity

    def get(self, id: int) -> E:
        """The live object ``id``; ``NotFound`` if it is missing or deleted."""
        with self._uow_factory() as uow:
            return self._load(uow, id)

    def update(self, id: int, changes: Mapping[str, object]) -> E:
        """Change the attributes given; an update that changes nothing writes nothing."""
        values = self.spec.clean(changes, creating=False)
        given = frozenset(values)
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            before = self._load(uow, id)
            after = self._check(uow, replace(before, **values), given, before)  # type: ignore[type-var]
            if after == before:
                return before  # nothing changed: roll back, the version included
            after = replace(after, last_modified=now)  # type: ignore[type-var]
            self.spec.repository(uow).update(after)
            uow.commit()
        return after

    def delete(self, id: int) -> None:
        """Soft-delete the object, unless its delete check refuses."""
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            entity = self._load(uow, id)
            self._delete_check(uow, entity)
            self.spec.repository(uow).soft_delete(id, now)
            self._also_delete(uow, id, now)
            uow.commit()

    # --- bulk writes ----------------------------------------------------------------------------

    def create_many(
        self, items: Sequence[Mapping[str, object]], *, keep_ids: bool = False
    ) -> list[E]:
        """Create every item (each as ``create`` takes it) or none. With ``keep_ids`` an
        item's ``id`` is used when no object has it (else it gets a new one, as items without
        an ``id`` do)."""
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            created = self.create_many_in(BatchView(uow), items, keep_ids=keep_ids, now=now)
            uow.commit()
        return created

    def update_many(self, items: Sequence[Mapping[str, object]]) -> list[E]:
        """Apply each item's changes (``{"id": N, ...}``, as ``update`` takes them) or none;
        returns the objects as they are now, in the items' order."""
        now = self._now()
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            updated = self.update_many_in(BatchView(uow), items, now=now)
            uow.commit()
        return updated

    def deactivate_many(self, ids: Sequence[object]) -> list[E]:
        """Set each object's state to inactive (all or none)."""
        return self.update_many(
            [{"id": id, "state": State.INACTIVE} for id in ids]  # the refusals' item = position
        )

    def create_many_in(
        self,
        view: BatchView,
        items: Sequence[Mapping[str, object]],
        *,
        keep_ids: bool,
        now: datetime,
    ) -> list[E]:
        """``create_many`` inside the caller's open transaction (bumped, not committed)."""
        spec = self.spec
        refusals = Refusals()
        cleaned: list[tuple[int, int | None, dict[str, object]]] = []
        for index, data in enumerate(items):
            wanted: int | None = None
            try:
                data = self._creating(data)
                if keep_ids:  # else an "id" is refused like any field set by the server
                    if data.get("id") is not None:
                        wanted = clean_id(data["id"], "id")
                    data = {k: v for k, v in data.items() if k != "id"}
                values = spec.clean(data, creating=True)
            except DomainError as exc:
                refusals.add(index, wanted, exc)
                continue
            cleaned.append((index, wanted, values))
        prime_references(view, (values for _, _, values in cleaned))
        cache = view.cache_of(spec.repository(view))
        ids = allocate_ids(spec.repository(view), [wanted for _, wanted, _ in cleaned])
        created: list[E] = []
        for (index, wanted, values), id in zip(cleaned, ids, strict=True):
            start = {**spec.placeholders, **values}
            entity = spec.entity(id=id, created_at=now, last_modified=now, **start)
            try:
                entity = self._check(view, entity, frozenset(values), None)
            except DomainError as exc:
                refusals.add(index, wanted, exc)
                continue
            cache.stage(entity)
            created.append(entity)
        refusals.raise_if_any()
        spec.repository(view).add_many(created)
        return created

    def update_many_in(
        self, view: BatchView, items: Sequence[Mapping[str, object]], *, now: datetime
    ) -> list[E]:
        """``update_many`` inside the caller's open transaction (bumped, not committed)."""
        spec = self.spec
        refusals = Refusals()
        parsed: list[tuple[int, int, dict[str, object]]] = []
        seen: set[int] = set()
        for index, data in enumerate(items):
            id: int | None = None
            try:
                if not isinstance(data, Mapping):
                    raise ValidationError("item", "must be an object")
                id = clean_id(data.get("id"), "id")
                if id in seen:
                    raise ValidationError("id", f"{id} is in more than one item")
                seen.add(id)
                values = spec.clean({k: v for k, v in data.items() if k != "id"}, creating=False)
            except DomainError as exc:
                refusals.add(index, id, exc)
                continue
            parsed.append((index, id, values))
        cache = view.cache_of(spec.repository(view))
        cache.prime(id for _, id, _ in parsed)
        prime_references(view, (values for _, _, values in parsed))
        results: list[E] = []
        changed: list[E] = []
        for index, id, values in parsed:
            try:
                before = self._load(view, id)
                after = self._check(view, replace(before, **values), frozenset(values), before)  # type: ignore[type-var]
            except DomainError as exc:
                refusals.add(index, id, exc)
                continue
            if after != before:
                after = replace(after, last_modified=now)  # type: ignore[type-var]
                cache.stage(after)
                changed.append(after)
            results.append(after)
        refusals.raise_if_any()
        spec.repository(view).update_many(changed)
        return results

    def list(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: object,
    ) -> Page[E]:
        """A page of live objects: ``q`` searches name, code or id; ``filters`` are the kind's
        list filters (``None`` values are ignored)."""
        if q is not None and not isinstance(q, str):
            raise ValidationError("q", "must be a text")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError("offset", "must be a non-negative integer")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        clean_filters: dict[str, int | str] = {}
        for name, value in filters.items():
            if value is None:
                continue
            cleaner = self.spec.list_filters.get(name)
            if cleaner is None:
                raise ValidationError(name, f"is not a filter of {self.spec.label}s")
            clean_filters[name] = cleaner(value)
        query = ListQuery(
            q=(q.strip() or None) if q else None,
            state=None if state is None else clean_enum(State, state, "state"),
            filters=clean_filters,
            offset=offset,
            limit=limit,
        )
        with self._uow_factory() as uow:
            return self.spec.repository(uow).list(query)

    # --- what a kind may refine ---------------------------------------------------------------

    def _load(self, uow: UnitOfWork, id: int) -> E:
        entity = self.spec.repository(uow).get(id) if is_id(id) else None
        if entity is None:
            raise NotFound("id", f"{self.spec.label} {id} does not exist")
        return entity

    def _creating(self, data: object) -> Mapping[str, object]:
        """An item of ``create_many`` as this catalogue creates it (a kind may add to it)."""
        if not isinstance(data, Mapping):
            raise ValidationError("item", "must be an object")
        return data

    def _also_delete(self, uow: UnitOfWork, id: int, at: datetime) -> None:
        """What goes with the object when it is deleted (nothing unless a kind says so)."""

    def _now(self) -> datetime:
        return as_utc(self._clock())
