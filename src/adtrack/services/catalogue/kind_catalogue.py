"""``KindCatalogue[E]``: create, get, update, (soft-)delete and list one kind of catalogue object.

Each write runs in one transaction that first bumps the catalogue version (collectors poll it),
then loads what the rules need, checks them on the merged result and stores. What differs per
kind is data (its ``EntitySpec``) and two functions: the check run before a create or update
stores, and the check run before a delete (``checks.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Generic, TypeVar

from adtrack.domain.errors import NotFound, ValidationError
from adtrack.domain.model import State
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import ID_MAX, clean_enum
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

    def _also_delete(self, uow: UnitOfWork, id: int, at: datetime) -> None:
        """What goes with the object when it is deleted (nothing unless a kind says so)."""

    def _now(self) -> datetime:
        return as_utc(self._clock())
