"""The dump's objects through the one mapping (``objects.from_xandr``): one copy per object,
and what each needs from the others (a line item's time zone is its advertiser's; a payment
rule's publisher and base-ness come from its publisher or the trackers using it). An object
it cannot map is refused, naming its field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from adtrack.domain.errors import DomainError
from adtrack.services.xandr.catalogue_import.plan import ImportItem
from adtrack.services.xandr.catalogue_import.report import ImportEntry
from adtrack.services.xandr.dump_files import DumpObject
from adtrack.services.xandr.objects import MappedObject, XandrKind, XandrRefusal, from_xandr

__all__ = ["latest_copies", "map_objects"]


def latest_copies(objects: Iterable[DumpObject]) -> tuple[list[DumpObject], list[str]]:
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


def map_objects(objects: Sequence[DumpObject]) -> list[ImportItem]:
    """Each object through the mapping, with what it needs from the others: a line item's time
    zone (its advertiser's), a payment rule's publisher and base-ness."""
    advertiser_zones: dict[object, str] = {}
    base_rule_publisher: dict[object, object] = {}
    rule_publishers: dict[object, set[object]] = {}
    for dumped in objects:
        obj = dumped.obj
        zone = obj.get("timezone")
        if dumped.kind is XandrKind.ADVERTISER and isinstance(zone, str):
            advertiser_zones[obj.get("id")] = zone
        elif dumped.kind is XandrKind.PUBLISHER and obj.get("base_payment_rule_id") is not None:
            base_rule_publisher[obj["base_payment_rule_id"]] = obj.get("id")
        elif dumped.kind.tracker_type is not None:
            rule = _nested(obj.get("payment_rule"))
            publisher = _nested(obj.get("publisher"))
            if rule is not None and publisher is not None:
                rule_publishers.setdefault(rule, set()).add(publisher)
    items: list[ImportItem] = []
    for dump_object in objects:
        obj = dump_object.obj
        name, raw_id = obj.get("name"), obj.get("id")
        entry = ImportEntry(
            kind=dump_object.kind,
            source=dump_object.source,
            position=dump_object.position,
            original_id=raw_id if isinstance(raw_id, int) else None,
            name=name if isinstance(name, str) else None,
        )
        item = ImportItem(entry)
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
