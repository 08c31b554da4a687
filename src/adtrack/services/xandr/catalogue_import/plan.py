"""The import's plan: each mapped object matched with what earlier imports created (update
or unchanged) or given an id (create: its original id where free), its references translated
to adtrack's ids, and the values to write worked out (codes adtrack refuses, base rules, the
changes of an update)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from adtrack.domain.catalogue_rules import BASE_RULE_CONDITIONAL_ONLY
from adtrack.domain.errors import DomainError, ValidationError
from adtrack.domain.model import CatalogueEntity, PaymentRule, State, Tracker, TrackerType
from adtrack.domain.validation import ID_MAX, clean_code
from adtrack.services.catalogue.batch_view import BatchView
from adtrack.services.catalogue.batches import allocate_ids
from adtrack.services.catalogue.publishers import BASE_RULE_NAME
from adtrack.services.xandr.catalogue_import.report import ImportEntry
from adtrack.services.xandr.objects import (
    REFERENCE_KINDS,
    FieldNote,
    MappedObject,
    XandrKind,
    XandrRefusal,
)

__all__ = ["ImportItem", "ImportPlanner", "platform_field"]

# Kinds sharing one id space (one table): the trackers.
_TABLE = {
    XandrKind.ADVERTISER: "advertisers",
    XandrKind.PUBLISHER: "publishers",
    XandrKind.LINE_ITEM: "line_items",
    XandrKind.PLACEMENT: "placements",
    XandrKind.PAYMENT_RULE: "payment_rules",
    XandrKind.IMPTRACKER: "trackers",
    XandrKind.CLICKTRACKER: "trackers",
}
_LABEL = {
    XandrKind.ADVERTISER: "advertiser",
    XandrKind.PUBLISHER: "publisher",
    XandrKind.LINE_ITEM: "line item",
    XandrKind.PLACEMENT: "placement",
    XandrKind.PAYMENT_RULE: "payment rule",
    XandrKind.IMPTRACKER: "impression tracker",
    XandrKind.CLICKTRACKER: "click tracker",
}
# A catalogue attribute -> the platform's field, per kind, where the names differ (refusals
# name the field of the dump).
_PLATFORM_FIELD: dict[XandrKind, dict[str, str]] = {
    XandrKind.IMPTRACKER: {
        "line_item_id": "line_item.id",
        "publisher_id": "publisher.id",
        "placement_id": "tag.id",
        "payment_rule_id": "payment_rule.id",
    },
    XandrKind.PAYMENT_RULE: {
        "advertiser_ids": "filtered_advertisers",
        "line_item_ids": "filtered_line_items",
        "advertiser_filter": "demand_filter_action",
        "line_item_filter": "demand_filter_action",
    },
}
_PLATFORM_FIELD[XandrKind.CLICKTRACKER] = {
    **_PLATFORM_FIELD[XandrKind.IMPTRACKER],
    "landing_page_url": "click_url",
}


class _ImportedLookup(Protocol):
    """What the planner asks of each kind's repository (all of them answer it)."""

    def live_with_original_ids(self, original_ids: Iterable[int]) -> Sequence[CatalogueEntity]: ...


def platform_field(kind: XandrKind, attribute: str) -> str:
    return _PLATFORM_FIELD.get(kind, {}).get(attribute, attribute)


@dataclass
class ImportItem:
    """One object on its way: its mapping, what it becomes and the values to write."""

    entry: ImportEntry
    mapped: MappedObject | None = None
    existing: CatalogueEntity | None = None  # the entity imported before (update / unchanged)
    values: dict[str, object] = field(default_factory=dict)

    @property
    def original_id(self) -> int:
        assert self.mapped is not None and self.mapped.original_id is not None
        return self.mapped.original_id


class ImportPlanner:
    """Matches the mapped objects with what earlier imports created, chooses the ids of new
    ones, translates references and works out each update's changes."""

    def __init__(self, view: BatchView, items: list[ImportItem]) -> None:
        self.view = view
        self.items = [item for item in items if item.mapped is not None]
        # (table, original id[, tracker type]) -> adtrack id, for references
        self.ids: dict[tuple[XandrKind, int], int] = {}
        self.refused_ids: set[tuple[XandrKind, int]] = {
            (item.entry.kind, item.entry.original_id)
            for item in items
            if item.entry.action == "refused" and item.entry.original_id is not None
        }
        self.base_rule_of: dict[int, ImportItem] = {}  # publisher's original id -> its base rule
        # new publisher's original id -> the id of the default base rule made with it
        self.default_base_rule: dict[int, int] = {}

    def repository(self, kind: XandrKind) -> _ImportedLookup:
        table = _TABLE[kind]
        repository: _ImportedLookup = getattr(self.view, table)
        return repository

    def plan(self) -> None:
        self.match()
        self.choose_ids()
        self.find_referenced()
        for item in self.items:
            if item.entry.action == "refused":
                continue
            try:
                self.settle(item)
            except DomainError as exc:
                item.entry.refuse(exc.field, exc.message)

    def match(self) -> None:
        by_kind: dict[XandrKind, list[ImportItem]] = {}
        for item in self.items:
            by_kind.setdefault(item.entry.kind, []).append(item)
        for kind, items in by_kind.items():
            found = self.repository(kind).live_with_original_ids(i.original_id for i in items)
            tracker_type = kind.tracker_type
            existing: dict[int, CatalogueEntity] = {}
            for entity in sorted(found, key=lambda e: e.id):
                if isinstance(entity, Tracker) and entity.tracker_type is not tracker_type:
                    continue
                if entity.original_id is not None:  # always: found by its original id
                    existing.setdefault(entity.original_id, entity)
            for item in items:
                match = existing.get(item.original_id)
                if match is not None:
                    item.existing = match
                    item.entry.id = match.id
                    self.ids[(kind, item.original_id)] = match.id
        # A publisher imported before keeps its base rule: the dump's base rule updates it
        # (it may not have been in the earlier dump).
        publishers = {
            item.original_id: item
            for item in self.items
            if item.entry.kind is XandrKind.PUBLISHER and item.mapped is not None
        }
        for item in self.items:
            mapped = item.mapped
            if item.entry.kind is not XandrKind.PAYMENT_RULE or mapped is None:
                continue
            if not mapped.values.get("is_base"):
                continue
            publisher_ref = mapped.references.get("publisher_id")
            publisher = publishers.get(publisher_ref) if publisher_ref is not None else None
            if publisher is not None:
                self.base_rule_of[publisher.original_id] = item
            if item.existing is None and publisher is not None and publisher.existing is not None:
                base = self.view.payment_rules.base_for_publisher(publisher.existing.id)
                if base is not None:
                    item.existing = base
                    item.entry.id = base.id
                    self.ids[(XandrKind.PAYMENT_RULE, item.original_id)] = base.id

    def choose_ids(self) -> None:
        """Ids for the objects to create: the original id where free (one id space per table:
        impression and click trackers share one)."""
        new: dict[str, list[ImportItem]] = {}
        for item in self.items:
            if item.existing is None and item.entry.action != "refused":
                new.setdefault(_TABLE[item.entry.kind], []).append(item)
        # A new publisher without its base rule in the dump gets a default one, created with
        # it: its id is chosen here too, so that it cannot take one planned for another rule.
        defaults = [
            item for item in new.get("publishers", []) if item.original_id not in self.base_rule_of
        ]
        tables = set(new) | ({"payment_rules"} if defaults else set())
        for table in sorted(tables):
            items = new.get(table, [])
            wanted: list[int | None] = [
                i.original_id if i.original_id <= ID_MAX else None for i in items
            ]
            extra = len(defaults) if table == "payment_rules" else 0
            ids = allocate_ids(getattr(self.view, table), [*wanted, *([None] * extra)])
            for item, id in zip(items, ids, strict=False):
                item.entry.id = id
                item.entry.action = "create"
                self.ids[(item.entry.kind, item.original_id)] = id
            if extra:
                for publisher, id in zip(defaults, ids[len(items) :], strict=True):
                    self.default_base_rule[publisher.original_id] = id

    def find_referenced(self) -> None:
        """The objects the dump refers to without holding them, imported before (a dump in
        parts, or a newer dump of some services only): found by their original ids."""
        wanted: dict[XandrKind, set[int]] = {}
        for item in self.items:
            mapped = item.mapped
            assert mapped is not None
            for attribute, ref in mapped.references.items():
                kind = REFERENCE_KINDS[attribute]
                if ref is not None and (kind, ref) not in self.ids:
                    wanted.setdefault(kind, set()).add(ref)
            for attribute, ids in mapped.id_sets.items():
                kind = REFERENCE_KINDS[attribute]
                wanted.setdefault(kind, set()).update(i for i in ids if (kind, i) not in self.ids)
        for kind, originals in wanted.items():
            if not originals:
                continue
            found = self.repository(kind).live_with_original_ids(originals)
            for entity in sorted(found, key=lambda e: -e.id):  # the lowest id wins
                if entity.original_id is not None:  # always: found by its original id
                    self.ids[(kind, entity.original_id)] = entity.id

    def translate(self, item: ImportItem, attribute: str, kind: XandrKind, original: int) -> int:
        found = self.ids.get((kind, original))
        if found is not None:
            return found
        label = _LABEL[kind]
        field = platform_field(item.entry.kind, attribute)
        if (kind, original) in self.refused_ids:
            raise XandrRefusal(field, f"{label} {original} of the dump was refused")
        raise XandrRefusal(field, f"{label} {original} is neither in the dump nor imported before")

    def settle(self, item: ImportItem) -> None:
        """The values to write (references translated) and, for an update, what changes."""
        mapped = item.mapped
        assert mapped is not None
        kind = item.entry.kind
        values: dict[str, object] = dict(mapped.values)
        for attribute, ref in mapped.references.items():
            if ref is None:
                if attribute == "advertiser_id":
                    continue  # a tracker's: its line item's advertiser
                values[attribute] = None
                continue
            values[attribute] = self.translate(item, attribute, REFERENCE_KINDS[attribute], ref)
        for attribute, ids in mapped.id_sets.items():
            target = REFERENCE_KINDS[attribute]
            values[attribute] = frozenset(self.translate(item, attribute, target, i) for i in ids)
        _adtrack_code(item, values)
        if kind is XandrKind.PAYMENT_RULE and values.get("is_base"):
            _base_rule_values(item, values)
        if kind is XandrKind.PUBLISHER:
            self.publisher_base_rule(item, values)
        if item.existing is None:
            item.values = values
            return
        item.values = _changes(item.existing, kind, values)
        item.entry.action = "update" if item.values else "unchanged"
        item.entry.changes = tuple(sorted(item.values))

    def publisher_base_rule(self, item: ImportItem, values: dict[str, object]) -> None:
        """A new publisher is created with its base rule: the dump's (with its id), or the
        default one when the dump has none."""
        if item.existing is not None:
            return
        rule = self.base_rule_of.get(item.original_id)
        mapped = item.mapped
        assert mapped is not None
        if rule is None or rule.entry.action == "refused":
            values["base_rule"] = {"id": self.default_base_rule.get(item.original_id)}
            if mapped.base_payment_rule_id is not None and rule is None:
                item.entry.notes.append(
                    FieldNote(
                        "base_payment_rule_id",
                        f"payment rule {mapped.base_payment_rule_id} is not in the dump: the "
                        f"publisher gets a base rule paying a revshare of 0 ({BASE_RULE_NAME})",
                    )
                )
            return
        assert rule.mapped is not None
        base: dict[str, object] = {
            k: v
            for k, v in rule.mapped.values.items()
            if k not in ("is_base", "state", "publisher_id", *BASE_RULE_CONDITIONAL_ONLY)
        }
        _adtrack_code(rule, base)
        base["id"] = rule.entry.id
        values["base_rule"] = base


def _adtrack_code(item: ImportItem, values: dict[str, object]) -> None:
    """A code adtrack's rules refuse (spaces...) is kept as the original code only."""
    code = values.get("code")
    if code is None:
        return
    try:
        values["code"] = clean_code(code)
    except ValidationError as exc:
        values["code"] = None
        item.entry.notes.append(
            FieldNote(
                "code",
                f"{exc.message}: the code is kept as the original code only (searchable)",
            )
        )


def _base_rule_values(item: ImportItem, values: dict[str, object]) -> None:
    """A base rule applies whenever no other rule does: it has no priority, dates or filters in
    adtrack, and is always active (notes say what was dropped)."""
    defaults = PaymentRule(id=0, publisher_id=0, name="")
    for attribute in (*BASE_RULE_CONDITIONAL_ONLY, "state"):
        if attribute not in values:
            continue
        value = values.pop(attribute)
        if value not in (getattr(defaults, attribute), None, frozenset()):
            shown = value.value if isinstance(value, State) else value
            item.entry.notes.append(
                FieldNote(
                    platform_field(XandrKind.PAYMENT_RULE, attribute),
                    f"{shown} is not kept: a base rule applies whenever no other rule does "
                    "(no priority, dates or filters; always active)",
                )
            )


def _changes(
    existing: CatalogueEntity, kind: XandrKind, values: Mapping[str, object]
) -> dict[str, object]:
    """The values that differ from the stored object (compared as the catalogue stores them)."""
    changes: dict[str, object] = {}
    for attribute, value in values.items():
        if attribute in ("is_base", "base_rule"):
            continue
        current = getattr(existing, attribute)
        if isinstance(current, State | TrackerType) or isinstance(value, State | TrackerType):
            same = str(getattr(current, "value", current)) == str(getattr(value, "value", value))
        elif isinstance(current, str) and isinstance(value, str):
            same = current == value.strip()
        else:
            same = current == value
        if not same:
            changes[attribute] = value
    if isinstance(existing, Tracker) and "advertiser_id" not in values:
        changes.pop("advertiser_id", None)
    return changes
