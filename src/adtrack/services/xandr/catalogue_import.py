"""Importing a catalogue dump of the original platform: the plan (what each object becomes:
created, updated, unchanged or refused) and its application, in one transaction.

- Every object is mapped by ``objects.from_xandr`` (the one mapping); a field it cannot keep is
  a note on the object, an object it cannot map at all is refused naming its field.
- An object is the same as one imported before when its kind and original id match
  (``original_id``; trackers by type too): then it is updated with what changed, or left alone.
  Otherwise it is created, with its original id as adtrack's id when that id is free (else a
  new one, reported).
- References between objects are the platform's ids; each becomes the adtrack id of the object
  of the dump, or of one imported before, that had it. A payment rule names no publisher on the
  platform: a base rule belongs to the publisher whose ``base_payment_rule_id`` it is, another
  to its own ``publisher_id`` when the dump has one, else to the publisher of the trackers
  using it.
- Kinds are written in dependency order (advertisers, publishers with their base rules, line
  items, placements, payment rules, trackers) with the catalogue's bulk writes, every
  catalogue rule applying. One refused object refuses the import: nothing is written
  (``ImportRefused``). A dry run does all of it and rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

from adtrack.domain.catalogue_rules import BASE_RULE_CONDITIONAL_ONLY
from adtrack.domain.errors import BatchRefused, DomainError, ValidationError
from adtrack.domain.model import PaymentRule, State, Tracker, TrackerType
from adtrack.domain.utc import as_utc
from adtrack.domain.validation import ID_MAX, clean_code
from adtrack.services.catalogue import CatalogueService, KindCatalogue
from adtrack.services.catalogue.batch_view import BatchView
from adtrack.services.catalogue.batches import allocate_ids
from adtrack.services.catalogue.publishers import BASE_RULE_NAME
from adtrack.services.ports import Repository, UnitOfWork
from adtrack.services.xandr.dump_files import Dump, DumpObject
from adtrack.services.xandr.objects import (
    FieldNote,
    MappedObject,
    XandrKind,
    XandrRefusal,
    from_xandr,
)

__all__ = [
    "IMPORT_ORDER",
    "Action",
    "CatalogueImport",
    "ImportEntry",
    "ImportRefused",
    "ImportReport",
]

Action = Literal["create", "update", "unchanged", "refused"]

# The order kinds are written in: each refers only to kinds before it.
IMPORT_ORDER = (
    XandrKind.ADVERTISER,
    XandrKind.PUBLISHER,
    XandrKind.LINE_ITEM,
    XandrKind.PLACEMENT,
    XandrKind.PAYMENT_RULE,
    XandrKind.IMPTRACKER,
    XandrKind.CLICKTRACKER,
)
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


def platform_field(kind: XandrKind, attribute: str) -> str:
    return _PLATFORM_FIELD.get(kind, {}).get(attribute, attribute)


@dataclass
class ImportEntry:
    """What one object of the dump becomes."""

    kind: XandrKind
    source: str  # the file
    position: str  # where in it: "imptrackers[3]"
    original_id: int | None
    name: str | None
    action: Action = "create"
    id: int | None = None  # adtrack's id (planned for a create)
    changes: tuple[str, ...] = ()  # the attributes an update changes
    notes: list[FieldNote] = field(default_factory=list)
    refused_field: str | None = None
    refusal: str | None = None

    @property
    def id_kept(self) -> bool | None:
        """Whether a created object has its original id (None: not a create)."""
        if self.action != "create" or self.id is None:
            return None
        return self.id == self.original_id

    def refuse(self, field: str, message: str) -> None:
        self.action = "refused"
        self.refused_field = field
        self.refusal = message

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind.value,
            "file": self.source,
            "object": self.position,
            "original_id": self.original_id,
            "name": self.name,
            "action": self.action,
            "id": self.id,
        }
        if self.action == "create":
            out["id_kept"] = self.id_kept
        if self.changes:
            out["changes"] = list(self.changes)
        if self.notes:
            out["notes"] = [{"field": n.field, "reason": n.reason} for n in self.notes]
        if self.action == "refused":
            out["field"] = self.refused_field
            out["message"] = self.refusal
        return out


@dataclass
class ImportReport:
    dry_run: bool
    applied: bool
    entries: list[ImportEntry]
    warnings: list[str]

    def refused(self) -> list[ImportEntry]:
        return [entry for entry in self.entries if entry.action == "refused"]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind, how many objects each action takes (every action listed)."""
        out: dict[str, dict[str, int]] = {}
        for entry in self.entries:
            kind = out.setdefault(
                entry.kind.value, {"create": 0, "update": 0, "unchanged": 0, "refused": 0}
            )
            kind[entry.action] += 1
        return out

    def new_ids(self) -> list[ImportEntry]:
        """The created objects that could not keep their original id."""
        return [entry for entry in self.entries if entry.id_kept is False]

    def to_json(self, *, max_entries: int | None = None) -> dict[str, object]:
        entries = self.entries if max_entries is None else self.entries[:max_entries]
        return {
            "dry_run": self.dry_run,
            "applied": self.applied,
            "counts": self.counts(),
            "refused": len(self.refused()),
            "new_ids": len(self.new_ids()),
            "warnings": self.warnings,
            "objects": [entry.to_json() for entry in entries],
        }


class ImportRefused(ValidationError):
    """An import with refused objects: nothing was written. ``report`` says what each object
    would have become, and why the refused ones were refused."""

    def __init__(self, report: ImportReport) -> None:
        refused = report.refused()
        first = refused[0]
        more = "" if len(refused) == 1 else f" ({len(refused) - 1} more objects refused)"
        super().__init__(
            f"{first.source}: {first.position}: {first.refused_field}",
            f"{first.refusal}{more}; nothing was imported",
        )
        self.report = report


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


@dataclass
class _Item:
    """One object on its way: its mapping, what it becomes and the values to write."""

    entry: ImportEntry
    mapped: MappedObject | None = None
    existing: Any = None  # the entity imported before (update / unchanged)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def original_id(self) -> int:
        assert self.mapped is not None and self.mapped.original_id is not None
        return self.mapped.original_id


def _latest(objects: Iterable[DumpObject]) -> tuple[list[DumpObject], list[str]]:
    """One object per (kind, id): a later ``last_modified`` wins, else the one read last."""
    chosen: dict[tuple[XandrKind, object], DumpObject] = {}
    order: list[tuple[XandrKind, object]] = []
    duplicates = 0
    for item in objects:
        key = (item.kind, item.obj.get("id"))
        if key[1] is None:
            key = (item.kind, item)  # no id: refused below, kept apart
        before = chosen.get(key)
        if before is None:
            order.append(key)
            chosen[key] = item
            continue
        duplicates += 1
        if str(item.obj.get("last_modified") or "") >= str(before.obj.get("last_modified") or ""):
            chosen[key] = item
    warnings = []
    if duplicates:
        warnings.append(
            f"{duplicates} objects appear more than once in the dump (the same page twice, or "
            "dumps of different days): the copy modified last is imported"
        )
    return [chosen[key] for key in order], warnings


class CatalogueImport:
    """Imports dumps into the catalogue of ``catalogue`` (its bulk writes, its rules)."""

    def __init__(
        self,
        catalogue: CatalogueService,
        uow_factory: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
    ) -> None:
        self._catalogue = catalogue
        self._uow_factory = uow_factory
        self._clock = clock

    def run(self, dump: Dump, *, dry_run: bool) -> ImportReport:
        """Import ``dump`` (or with ``dry_run`` only say what it would do). Raises
        ``ImportRefused`` when an object is refused and this is not a dry run."""
        objects, warnings = _latest(dump.objects)
        rank = {kind: n for n, kind in enumerate(IMPORT_ORDER)}
        objects.sort(key=lambda o: rank[o.kind])  # stable: the dump's order within a kind
        warnings = dump.warnings() + warnings
        items = _map_all(objects)
        now = as_utc(self._clock())
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            view = BatchView(uow)
            _Planner(view, items).plan()
            refused = any(item.entry.action == "refused" for item in items)
            if not refused:
                self._apply(view, items, now)
                refused = any(item.entry.action == "refused" for item in items)
            changes = any(item.entry.action in ("create", "update") for item in items)
            report = ImportReport(
                dry_run=dry_run,
                applied=not dry_run and not refused,
                entries=[item.entry for item in items],
                warnings=warnings,
            )
            if report.applied and changes:  # nothing changed: not even the version moves
                uow.commit()
        if refused and not dry_run:
            raise ImportRefused(report)
        return report

    # --- application ------------------------------------------------------------------------

    def _apply(self, view: BatchView, items: list[_Item], now: datetime) -> None:
        c = self._catalogue
        by_kind: dict[XandrKind, list[_Item]] = {kind: [] for kind in IMPORT_ORDER}
        for item in items:
            by_kind[item.entry.kind].append(item)
        catalogues: dict[XandrKind, KindCatalogue[Any]] = {
            XandrKind.ADVERTISER: c.advertisers,
            XandrKind.PUBLISHER: c.publishers,
            XandrKind.LINE_ITEM: c.line_items,
            XandrKind.PLACEMENT: c.placements,
            XandrKind.PAYMENT_RULE: c.payment_rules,
            XandrKind.IMPTRACKER: c.impression_trackers,
            XandrKind.CLICKTRACKER: c.click_trackers,
        }
        for kind in IMPORT_ORDER:
            objects = catalogues[kind]
            kind_items = by_kind[kind]
            creates = [i for i in kind_items if i.entry.action == "create"]
            if kind is XandrKind.PAYMENT_RULE:
                # base rules come with their publishers
                creates = [i for i in creates if not i.values.get("is_base")]
            updates = [i for i in kind_items if i.entry.action == "update"]
            create = partial(objects.create_many_in, view, keep_ids=True, now=now)
            update = partial(objects.update_many_in, view, now=now)
            if not _write(kind, creates, create) or not _write(kind, updates, update):
                return


def _write(
    kind: XandrKind, items: list[_Item], write: Callable[[list[Mapping[str, object]]], object]
) -> bool:
    """One bulk write of the items (by their planned ids); its refusals go to the items'
    entries. False if any was refused."""
    if not items:
        return True
    try:
        write([{"id": item.entry.id, **item.values} for item in items])
    except BatchRefused as exc:
        for refusal in exc.refusals:
            field, message = platform_field(kind, refusal.field), refusal.message
            prefix = "base_rule."
            if refusal.field.startswith(prefix):  # the base rule made with a new publisher
                attribute = refusal.field.removeprefix(prefix)
                field = "base_payment_rule_id"
                rule_field = platform_field(XandrKind.PAYMENT_RULE, attribute)
                message = f"its base rule's {rule_field} {message}"
            items[refusal.item].entry.refuse(field, message)
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Mapping and planning
# ---------------------------------------------------------------------------------------------


def _map_all(objects: Sequence[DumpObject]) -> list[_Item]:
    """Each object through the mapping, with what it needs from the others: a line item's time
    zone (its advertiser's), a payment rule's publisher and base-ness."""
    advertiser_zones: dict[object, str] = {}
    base_rule_publisher: dict[object, object] = {}
    rule_publishers: dict[object, set[object]] = {}
    for dumped in objects:
        obj = dumped.obj
        if dumped.kind is XandrKind.ADVERTISER and isinstance(obj.get("timezone"), str):
            advertiser_zones[obj.get("id")] = obj["timezone"]
        elif dumped.kind is XandrKind.PUBLISHER and obj.get("base_payment_rule_id") is not None:
            base_rule_publisher[obj["base_payment_rule_id"]] = obj.get("id")
        elif dumped.kind.tracker_type is not None:
            rule = _nested(obj.get("payment_rule"))
            publisher = _nested(obj.get("publisher"))
            if rule is not None and publisher is not None:
                rule_publishers.setdefault(rule, set()).add(publisher)
    items: list[_Item] = []
    for dump_object in objects:
        obj = dump_object.obj
        name = obj.get("name")
        entry = ImportEntry(
            kind=dump_object.kind,
            source=dump_object.source,
            position=dump_object.position,
            original_id=obj.get("id") if isinstance(obj.get("id"), int) else None,
            name=name if isinstance(name, str) else None,
        )
        item = _Item(entry)
        items.append(item)
        try:
            if obj.get("id") is None:
                raise XandrRefusal("id", "is required: a dumped object has its id")
            item.mapped = _map_one(
                dump_object, advertiser_zones, base_rule_publisher, rule_publishers
            )
        except DomainError as exc:
            entry.refuse(exc.field, exc.message)
            continue
        entry.original_id = item.mapped.original_id
        entry.notes.extend(item.mapped.notes)
    return items


def _nested(value: object) -> object:
    if isinstance(value, list):
        value = value[0] if value else None
    return value.get("id") if isinstance(value, Mapping) else None


def _map_one(
    item: DumpObject,
    advertiser_zones: Mapping[object, str],
    base_rule_publisher: Mapping[object, object],
    rule_publishers: Mapping[object, set[object]],
) -> MappedObject:
    obj, kind = item.obj, item.kind
    if kind is XandrKind.LINE_ITEM:
        advertiser = obj.get("advertiser_id")
        if advertiser is None:
            advertiser = _nested(obj.get("advertiser"))
        return from_xandr(kind, obj, timezone=advertiser_zones.get(advertiser))
    if kind is XandrKind.PAYMENT_RULE:
        rule_id = obj.get("id")
        if rule_id in base_rule_publisher:
            publisher = base_rule_publisher[rule_id]
            mapped = from_xandr(kind, obj, publisher_id=_int(publisher), is_base=True)
            if obj.get("publisher_id") not in (None, publisher):
                raise XandrRefusal(
                    "publisher_id",
                    f"is {obj['publisher_id']}, but the rule is the base rule of publisher "
                    f"{publisher}",
                )
            return mapped
        publisher_id = obj.get("publisher_id")
        if publisher_id is None:
            found = rule_publishers.get(rule_id, set())
            if len(found) > 1:
                raise XandrRefusal(
                    "publisher_id",
                    "is not in the dump, and trackers of several publishers "
                    f"({', '.join(str(p) for p in sorted(found, key=str))}) use the rule",
                )
            if not found:
                raise XandrRefusal(
                    "publisher_id",
                    "is not in the dump: the rule is no publisher's base rule and no tracker "
                    "uses it, so its publisher is unknown (dump it with "
                    "payment-rule?publisher_id=..., which adds publisher_id)",
                )
            publisher_id = next(iter(found))
        return from_xandr(kind, obj, publisher_id=_int(publisher_id), is_base=False)
    return from_xandr(kind, obj)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Planner:
    """Matches the mapped objects with what earlier imports created, chooses the ids of new
    ones, translates references and works out each update's changes."""

    def __init__(self, view: BatchView, items: list[_Item]) -> None:
        self.view = view
        self.items = [item for item in items if item.mapped is not None]
        # (table, original id[, tracker type]) -> adtrack id, for references
        self.ids: dict[tuple[XandrKind, int], int] = {}
        self.refused_ids: set[tuple[XandrKind, int]] = {
            (item.entry.kind, item.entry.original_id)
            for item in items
            if item.entry.action == "refused" and item.entry.original_id is not None
        }
        self.base_rule_of: dict[int, _Item] = {}  # publisher's original id -> its base rule
        # new publisher's original id -> the id of the default base rule made with it
        self.default_base_rule: dict[int, int] = {}

    def repository(self, kind: XandrKind) -> Repository[Any]:
        table = _TABLE[kind]
        repository: Repository[Any] = getattr(self.view, table)
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
        by_kind: dict[XandrKind, list[_Item]] = {}
        for item in self.items:
            by_kind.setdefault(item.entry.kind, []).append(item)
        for kind, items in by_kind.items():
            found = self.repository(kind).live_with_original_ids(i.original_id for i in items)
            tracker_type = kind.tracker_type
            existing: dict[int, Any] = {}
            for entity in sorted(found, key=lambda e: e.id):
                if tracker_type is not None and entity.tracker_type is not tracker_type:
                    continue
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
        new: dict[str, list[_Item]] = {}
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
                kind = _REFERENCE_KIND[attribute]
                if ref is not None and (kind, ref) not in self.ids:
                    wanted.setdefault(kind, set()).add(ref)
            for attribute, ids in mapped.id_sets.items():
                kind = _REFERENCE_KIND[attribute]
                wanted.setdefault(kind, set()).update(i for i in ids if (kind, i) not in self.ids)
        for kind, originals in wanted.items():
            if not originals:
                continue
            found = self.repository(kind).live_with_original_ids(originals)
            for entity in sorted(found, key=lambda e: -e.id):  # the lowest id wins
                self.ids[(kind, entity.original_id)] = entity.id

    def translate(self, item: _Item, attribute: str, kind: XandrKind, original: int) -> int:
        found = self.ids.get((kind, original))
        if found is not None:
            return found
        label = _LABEL[kind]
        field = platform_field(item.entry.kind, attribute)
        if (kind, original) in self.refused_ids:
            raise XandrRefusal(field, f"{label} {original} of the dump was refused")
        raise XandrRefusal(field, f"{label} {original} is neither in the dump nor imported before")

    def settle(self, item: _Item) -> None:
        """The values to write (references translated) and, for an update, what changes."""
        mapped = item.mapped
        assert mapped is not None
        kind = item.entry.kind
        values: dict[str, Any] = dict(mapped.values)
        for attribute, ref in mapped.references.items():
            if ref is None:
                if attribute == "advertiser_id":
                    continue  # a tracker's: its line item's advertiser
                values[attribute] = None
                continue
            values[attribute] = self.translate(item, attribute, _REFERENCE_KIND[attribute], ref)
        for attribute, ids in mapped.id_sets.items():
            target = _REFERENCE_KIND[attribute]
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

    def publisher_base_rule(self, item: _Item, values: dict[str, Any]) -> None:
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
        base: dict[str, Any] = {
            k: v
            for k, v in rule.mapped.values.items()
            if k not in ("is_base", "state", "publisher_id", *BASE_RULE_CONDITIONAL_ONLY)
        }
        _adtrack_code(rule, base)
        base["id"] = rule.entry.id
        values["base_rule"] = base


_REFERENCE_KIND: dict[str, XandrKind] = {
    "advertiser_id": XandrKind.ADVERTISER,
    "line_item_id": XandrKind.LINE_ITEM,
    "publisher_id": XandrKind.PUBLISHER,
    "placement_id": XandrKind.PLACEMENT,
    "payment_rule_id": XandrKind.PAYMENT_RULE,
    "advertiser_ids": XandrKind.ADVERTISER,
    "line_item_ids": XandrKind.LINE_ITEM,
}


def _adtrack_code(item: _Item, values: dict[str, Any]) -> None:
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


def _base_rule_values(item: _Item, values: dict[str, Any]) -> None:
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


def _changes(existing: Any, kind: XandrKind, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from the stored object (compared as the catalogue stores them)."""
    changes: dict[str, Any] = {}
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
