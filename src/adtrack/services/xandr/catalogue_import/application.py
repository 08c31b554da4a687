"""The import's application: ``CatalogueImport`` plans a dump in one transaction and, unless an
object is refused, writes the plan kind by kind, in dependency order, with the catalogue's
bulk writes (every catalogue rule applying; their refusals go to the objects' entries). A dry
run does all of it and rolls back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Protocol

from adtrack.domain.errors import BatchRefused
from adtrack.domain.utc import as_utc
from adtrack.services.catalogue import CatalogueService
from adtrack.services.catalogue.batch_view import BatchView
from adtrack.services.ports import UnitOfWork
from adtrack.services.xandr.catalogue_import.mapping import latest_copies, map_objects
from adtrack.services.xandr.catalogue_import.plan import ImportItem, ImportPlanner, platform_field
from adtrack.services.xandr.catalogue_import.report import ImportRefused, ImportReport
from adtrack.services.xandr.dump_files import Dump
from adtrack.services.xandr.objects import XandrKind

__all__ = ["IMPORT_ORDER", "CatalogueImport"]

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


class _BulkWrites(Protocol):
    """The bulk writes the import makes in its own transaction (every kind's catalogue)."""

    def create_many_in(
        self,
        view: BatchView,
        items: Sequence[Mapping[str, object]],
        *,
        keep_ids: bool,
        now: datetime,
    ) -> Sequence[object]: ...

    def update_many_in(
        self, view: BatchView, items: Sequence[Mapping[str, object]], *, now: datetime
    ) -> Sequence[object]: ...


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
        objects, warnings = latest_copies(dump.objects)
        rank = {kind: n for n, kind in enumerate(IMPORT_ORDER)}
        objects.sort(key=lambda o: rank[o.kind])  # stable: the dump's order within a kind
        warnings = dump.warnings() + warnings
        items = map_objects(objects)
        now = as_utc(self._clock())
        with self._uow_factory() as uow:
            uow.catalogue_version.bump(now)
            view = BatchView(uow)
            ImportPlanner(view, items).plan()
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

    def _apply(self, view: BatchView, items: list[ImportItem], now: datetime) -> None:
        c = self._catalogue
        by_kind: dict[XandrKind, list[ImportItem]] = {kind: [] for kind in IMPORT_ORDER}
        for item in items:
            by_kind[item.entry.kind].append(item)
        catalogues: dict[XandrKind, _BulkWrites] = {
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
    kind: XandrKind, items: list[ImportItem], write: Callable[[list[Mapping[str, object]]], object]
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
