"""Names of related catalogue objects for list cells and detail pages (``names('publisher',
tracker.publisher_id)`` in a template), fetched once per id per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from adtrack.domain.errors import DomainError
from adtrack.services.catalogue import CatalogueService

__all__ = ["CatalogueNames"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _NamedObjects(Protocol):
    """A kind's catalogue, as far as names are concerned."""

    def get(self, id: int, /) -> _Named: ...


# The words templates name a kind by.
_CATALOGUE_OF: dict[str, Callable[[CatalogueService], _NamedObjects]] = {
    "advertiser": lambda catalogue: catalogue.advertisers,
    "line_item": lambda catalogue: catalogue.line_items,
    "publisher": lambda catalogue: catalogue.publishers,
    "placement": lambda catalogue: catalogue.placements,
    "payment_rule": lambda catalogue: catalogue.payment_rules,
}


class CatalogueNames:
    """``names(kind, id)``: the object's name; ``missing`` (formatted with ``id``) when it
    cannot be read, e.g. because it was deleted; "" for no id."""

    def __init__(self, catalogue: CatalogueService, missing: str = "#{id}") -> None:
        self._catalogue = catalogue
        self._missing = missing
        self._cache: dict[tuple[str, int], str] = {}

    def __call__(self, kind: str, object_id: int | None) -> str:
        if object_id is None:
            return ""
        key = (kind, object_id)
        if key not in self._cache:
            try:
                self._cache[key] = _CATALOGUE_OF[kind](self._catalogue).get(object_id).name
            except DomainError:
                self._cache[key] = self._missing.format(id=object_id)
        return self._cache[key]
