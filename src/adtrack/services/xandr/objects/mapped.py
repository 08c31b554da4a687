"""What one platform object becomes on its way into the catalogue (``MappedObject``): the
values a create or update accepts, the references still in the platform's ids, and a note per
field that does not map faithfully."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from adtrack.services.xandr.objects.conventions import XandrKind

__all__ = ["OTHER_FIELDS", "REFERENCE_KINDS", "FieldNote", "IdTranslation", "MappedObject"]

# The field of the note that lists the fields with no equivalent at all.
OTHER_FIELDS = "(other fields)"


@dataclass(frozen=True)
class FieldNote:
    """A field whose value adtrack does not keep as it was, and why."""

    field: str
    reason: str


# Referencing attribute (adtrack's name) -> the kind it refers to.
REFERENCE_KINDS: Mapping[str, XandrKind] = {
    "advertiser_id": XandrKind.ADVERTISER,
    "line_item_id": XandrKind.LINE_ITEM,
    "publisher_id": XandrKind.PUBLISHER,
    "placement_id": XandrKind.PLACEMENT,
    "payment_rule_id": XandrKind.PAYMENT_RULE,
    "advertiser_ids": XandrKind.ADVERTISER,
    "line_item_ids": XandrKind.LINE_ITEM,
}

# Translates a referenced object's id (kind, id on the platform) into adtrack's id.
IdTranslation = Callable[[XandrKind, int], int]


@dataclass(frozen=True)
class MappedObject:
    """One platform object as adtrack's catalogue takes it.

    ``values``: the catalogue's attributes (no references), with ``original_id`` and
    ``original_code`` when the object came with an id. ``references``: referencing attribute
    (``line_item_id``...) -> the referenced object's id as the JSON gave it (None: cleared).
    ``id_sets``: a payment rule's filtered ``advertiser_ids`` / ``line_item_ids``.
    """

    kind: XandrKind
    original_id: int | None
    original_code: str | None
    values: Mapping[str, object]
    references: Mapping[str, int | None] = field(default_factory=dict)
    id_sets: Mapping[str, frozenset[int]] = field(default_factory=dict)
    notes: tuple[FieldNote, ...] = ()
    last_modified: datetime | None = None
    # A publisher's base_payment_rule_id (the catalogue makes the base rule with the publisher).
    base_payment_rule_id: int | None = None

    def catalogue_values(self, translate: IdTranslation | None = None) -> dict[str, object]:
        """``values`` with the references, translated by ``translate`` (unchanged without)."""

        def adtrack_id(attribute: str, id: int) -> int:
            return id if translate is None else translate(REFERENCE_KINDS[attribute], id)

        merged: dict[str, object] = dict(self.values)
        for attribute, ref in self.references.items():
            merged[attribute] = None if ref is None else adtrack_id(attribute, ref)
        for attribute, ids in self.id_sets.items():
            merged[attribute] = frozenset(adtrack_id(attribute, id) for id in ids)
        return merged
