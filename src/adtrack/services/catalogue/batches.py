"""What every bulk write shares: collecting the refusals of its items, choosing the ids of new
objects, and loading what the items refer to a few hundred ids at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from adtrack.domain.errors import BatchRefused, DomainError, ItemRefusal
from adtrack.domain.validation import ID_MAX
from adtrack.services.catalogue.batch_view import BatchView

__all__ = ["Refusals", "allocate_ids", "prime_references"]


class Refusals:
    """The refused items of one batch; ``raise_if_any`` refuses the whole batch."""

    def __init__(self) -> None:
        self.items: list[ItemRefusal] = []
        self.total = 0

    def add(self, index: int, id: int | None, error: DomainError) -> None:
        self.total += 1
        if len(self.items) < BatchRefused.MAX_REFUSALS:
            self.items.append(ItemRefusal(index, id, error.field, error.message))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self) -> None:
        if self.total:
            raise BatchRefused(sorted(self.items, key=lambda r: r.item), self.total)


class IdSpace(Protocol):
    """What choosing ids asks of a kind's repository (every ``Repository`` answers it)."""

    def taken_ids(self, ids: Iterable[int]) -> set[int]: ...

    def max_id(self) -> int: ...


def allocate_ids(repository: IdSpace, wanted: Sequence[int | None]) -> list[int]:
    """An id for each new object: the one it wants when no row has it (nor an earlier item of
    the batch), else a fresh one above every id in use. Only inside a catalogue write, after
    the version's bump: its lock keeps other writers from taking the same ids meanwhile."""
    asked = [i for i in wanted if i is not None]
    taken = repository.taken_ids(asked) if asked else set()
    free_asked = [i for i in asked if i not in taken and 1 <= i <= ID_MAX]
    next_id = max([repository.max_id(), *free_asked])
    ids: list[int] = []
    for want in wanted:
        if want is not None and want not in taken and 1 <= want <= ID_MAX:
            taken.add(want)  # a later item asking for it gets a fresh one
            ids.append(want)
        else:
            next_id += 1
            ids.append(next_id)
    return ids


# Reference attribute -> the kind it names, for priming the view's caches.
_REFERENCES = {
    "advertiser_id": "advertisers",
    "line_item_id": "line_items",
    "publisher_id": "publishers",
    "placement_id": "placements",
    "payment_rule_id": "payment_rules",
}
_REFERENCE_SETS = {"advertiser_ids": "advertisers", "line_item_ids": "line_items"}


def prime_references(view: BatchView, values: Iterable[Mapping[str, object]]) -> None:
    """Load every object the items refer to (and the advertisers of their line items, which a
    tracker without an advertiser takes) into the view's caches, a few queries per kind."""
    wanted: dict[str, set[int]] = {kind: set() for kind in _REFERENCES.values()}
    for item in values:
        for attribute, kind in _REFERENCES.items():
            value = item.get(attribute)
            if isinstance(value, int):
                wanted[kind].add(value)
        for attribute, kind in _REFERENCE_SETS.items():
            members = item.get(attribute)
            if isinstance(members, frozenset | set):
                wanted[kind].update(i for i in members if isinstance(i, int))
    view.line_items_cache.prime(wanted["line_items"])
    wanted["advertisers"].update(
        line_item.advertiser_id
        for i in wanted["line_items"]
        if (line_item := view.line_items_cache.get(i)) is not None
    )
    for kind, ids in wanted.items():
        if kind != "line_items":
            getattr(view, f"{kind}_cache").prime(ids)
