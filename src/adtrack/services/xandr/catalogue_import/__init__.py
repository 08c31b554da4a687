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

from adtrack.services.xandr.catalogue_import.application import IMPORT_ORDER, CatalogueImport
from adtrack.services.xandr.catalogue_import.report import (
    Action,
    ImportEntry,
    ImportRefused,
    ImportReport,
)

__all__ = [
    "IMPORT_ORDER",
    "Action",
    "CatalogueImport",
    "ImportEntry",
    "ImportRefused",
    "ImportReport",
]
