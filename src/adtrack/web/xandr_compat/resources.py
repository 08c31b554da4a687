"""The platform's services on adtrack's catalogue: ``imptracker`` and ``clicktracker`` (read
and write), ``advertiser``, ``line-item``, ``publisher``, ``placement`` and ``payment-rule``
(read). Every read and write goes through ``CatalogueService``; the JSON both ways is
the ``services/xandr/objects`` package's.

Blocking work (the database) runs in these synchronous functions, which the routes call on a
worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from adtrack.config import Settings
from adtrack.domain.errors import DomainError, NotFound
from adtrack.domain.json_values import JsonObject
from adtrack.domain.model import (
    Advertiser,
    CatalogueEntity,
    LineItem,
    PaymentRule,
    Placement,
    Publisher,
    Tracker,
)
from adtrack.services.catalogue import CatalogueService, KindCatalogue
from adtrack.services.xandr.objects import (
    FieldNote,
    Names,
    XandrKind,
    advertiser_to_xandr,
    from_xandr,
    line_item_to_xandr,
    payment_rule_to_xandr,
    placement_to_xandr,
    publisher_to_xandr,
    tracker_to_xandr,
)
from adtrack.web.xandr_compat.request_input import Paging

__all__ = ["SERVICES", "Answer", "Service", "XandrService"]

E = TypeVar("E", bound=CatalogueEntity)

# Renders a list of entities as the platform's objects (the names they show fetched once).
Render = Callable[[CatalogueService, Settings, Sequence[E]], list[dict[str, object]]]


@dataclass(frozen=True)
class Answer:
    """The fields of a successful answer, and the notes of a write (as ``warnings``)."""

    body: dict[str, object]
    notes: tuple[FieldNote, ...] = ()


@dataclass(frozen=True)
class Service(Generic[E]):
    """One of the platform's services on one kind of catalogue object. The routes call its
    operations through ``XandrService`` (the services of every kind, one type)."""

    kind: XandrKind
    catalogue: Callable[[CatalogueService], KindCatalogue[E]]
    render: Render[E]
    # Query parameters that filter a list (the catalogue's list filter of the same name).
    filters: tuple[str, ...] = ()
    writable: bool = False

    def _one(
        self, catalogue: CatalogueService, settings: Settings, entity: E, paging: int
    ) -> dict[str, object]:
        (rendered,) = self.render(catalogue, settings, [entity])
        return {
            "count": 1,
            "id": entity.id,
            "start_element": 0,
            "num_elements": paging,
            self.kind.value: rendered,
        }

    def read(
        self,
        catalogue: CatalogueService,
        settings: Settings,
        ids: tuple[int, ...],
        filters: Mapping[str, int],
        paging: Paging,
    ) -> Answer:
        """One object (``?id=N``: NOTFOUND when there is none), several (``?id=1,2,3``: those
        that exist) or a page of a list (with the service's filters)."""
        kind_catalogue = self.catalogue(catalogue)
        window: Sequence[E]
        if len(ids) == 1:
            entity = kind_catalogue.get(ids[0])
            body = self._one(catalogue, settings, entity, paging.num_elements)
            del body["id"]  # the platform's GET answer has no top-level id
            return Answer(body)
        if ids:
            found: list[E] = []
            for id in ids:
                try:
                    found.append(kind_catalogue.get(id))
                except NotFound:
                    continue
            count = len(found)
            window = found[paging.start_element : paging.start_element + paging.num_elements]
        else:
            # The filters are the service's own names (never q or state).
            page = kind_catalogue.list(
                offset=paging.start_element,
                limit=paging.num_elements,
                **filters,  # type: ignore[arg-type]
            )
            count, window = page.total, page.items
        return Answer(
            {
                "count": count,
                "start_element": paging.start_element,
                "num_elements": paging.num_elements,
                self.kind.plural: self.render(catalogue, settings, window),
            }
        )

    def create(
        self,
        catalogue: CatalogueService,
        settings: Settings,
        obj: JsonObject,
        advertiser_id: int | None,
    ) -> Answer:
        mapped = from_xandr(self.kind, obj, keep_original=False, advertiser_id=advertiser_id)
        entity = self.catalogue(catalogue).create(mapped.catalogue_values())
        return Answer(
            self._one(catalogue, settings, entity, settings.xandr_max_elements), mapped.notes
        )

    def update(
        self, catalogue: CatalogueService, settings: Settings, id: int, obj: JsonObject
    ) -> Answer:
        mapped = from_xandr(self.kind, obj, partial=True, keep_original=False)
        entity = self.catalogue(catalogue).update(id, mapped.catalogue_values())
        return Answer(
            self._one(catalogue, settings, entity, settings.xandr_max_elements), mapped.notes
        )

    def delete(self, catalogue: CatalogueService, id: int) -> Answer:
        self.catalogue(catalogue).delete(id)
        return Answer({})


class XandrService(Protocol):
    """A ``Service`` of any kind, as the routes use it."""

    @property
    def kind(self) -> XandrKind: ...

    @property
    def filters(self) -> tuple[str, ...]: ...

    @property
    def writable(self) -> bool: ...

    def read(
        self,
        catalogue: CatalogueService,
        settings: Settings,
        ids: tuple[int, ...],
        filters: Mapping[str, int],
        paging: Paging,
    ) -> Answer: ...

    def create(
        self,
        catalogue: CatalogueService,
        settings: Settings,
        obj: JsonObject,
        advertiser_id: int | None,
    ) -> Answer: ...

    def update(
        self, catalogue: CatalogueService, settings: Settings, id: int, obj: JsonObject
    ) -> Answer: ...

    def delete(self, catalogue: CatalogueService, id: int) -> Answer: ...


# Each kind's live object by id (NotFound when there is none), for the names rendered.
_GET: Mapping[XandrKind, Callable[[CatalogueService, int], CatalogueEntity]] = {
    XandrKind.ADVERTISER: lambda catalogue, id: catalogue.advertisers.get(id),
    XandrKind.LINE_ITEM: lambda catalogue, id: catalogue.line_items.get(id),
    XandrKind.PUBLISHER: lambda catalogue, id: catalogue.publishers.get(id),
    XandrKind.PLACEMENT: lambda catalogue, id: catalogue.placements.get(id),
    XandrKind.PAYMENT_RULE: lambda catalogue, id: catalogue.payment_rules.get(id),
    XandrKind.IMPTRACKER: lambda catalogue, id: catalogue.impression_trackers.get(id),
    XandrKind.CLICKTRACKER: lambda catalogue, id: catalogue.click_trackers.get(id),
}


def _names(catalogue: CatalogueService, wanted: Iterable[tuple[XandrKind, int | None]]) -> Names:
    """The names of the objects ``wanted`` (a deleted one has none: shown as null)."""
    names: dict[tuple[XandrKind, int], str] = {}
    for kind, id in set(wanted):
        if id is None:
            continue
        try:
            names[(kind, id)] = _GET[kind](catalogue, id).name
        except DomainError:
            continue
    return names


def _render_trackers(
    catalogue: CatalogueService, settings: Settings, trackers: Sequence[Tracker]
) -> list[dict[str, object]]:
    names = _names(
        catalogue,
        (
            pair
            for t in trackers
            for pair in (
                (XandrKind.PUBLISHER, t.publisher_id),
                (XandrKind.LINE_ITEM, t.line_item_id),
                (XandrKind.PLACEMENT, t.placement_id),
                (XandrKind.PAYMENT_RULE, t.payment_rule_id),
            )
        ),
    )
    return [tracker_to_xandr(t, names, member_id=settings.xandr_member_id) for t in trackers]


def _render_advertisers(
    catalogue: CatalogueService, settings: Settings, advertisers: Sequence[Advertiser]
) -> list[dict[str, object]]:
    return [advertiser_to_xandr(a) for a in advertisers]


def _render_line_items(
    catalogue: CatalogueService, settings: Settings, line_items: Sequence[LineItem]
) -> list[dict[str, object]]:
    names = _names(catalogue, ((XandrKind.ADVERTISER, li.advertiser_id) for li in line_items))
    return [line_item_to_xandr(li, names) for li in line_items]


def _render_publishers(
    catalogue: CatalogueService, settings: Settings, publishers: Sequence[Publisher]
) -> list[dict[str, object]]:
    out = []
    for publisher in publishers:
        base = catalogue.payment_rules.list(publisher_id=publisher.id, is_base=True, limit=1)
        base_id = base.items[0].id if base.items else None
        out.append(publisher_to_xandr(publisher, base_payment_rule_id=base_id))
    return out


def _render_placements(
    catalogue: CatalogueService, settings: Settings, placements: Sequence[Placement]
) -> list[dict[str, object]]:
    names = _names(catalogue, ((XandrKind.PUBLISHER, p.publisher_id) for p in placements))
    return [placement_to_xandr(p, names) for p in placements]


def _render_payment_rules(
    catalogue: CatalogueService, settings: Settings, rules: Sequence[PaymentRule]
) -> list[dict[str, object]]:
    names = _names(
        catalogue,
        [(XandrKind.ADVERTISER, id) for rule in rules for id in rule.advertiser_ids]
        + [(XandrKind.LINE_ITEM, id) for rule in rules for id in rule.line_item_ids],
    )
    return [payment_rule_to_xandr(rule, names) for rule in rules]


SERVICES: tuple[XandrService, ...] = (
    Service(
        XandrKind.IMPTRACKER,
        lambda catalogue: catalogue.impression_trackers,
        _render_trackers,
        filters=("advertiser_id", "line_item_id", "publisher_id"),
        writable=True,
    ),
    Service(
        XandrKind.CLICKTRACKER,
        lambda catalogue: catalogue.click_trackers,
        _render_trackers,
        filters=("advertiser_id", "line_item_id", "publisher_id"),
        writable=True,
    ),
    Service(XandrKind.ADVERTISER, lambda catalogue: catalogue.advertisers, _render_advertisers),
    Service(
        XandrKind.LINE_ITEM,
        lambda catalogue: catalogue.line_items,
        _render_line_items,
        filters=("advertiser_id",),
    ),
    Service(XandrKind.PUBLISHER, lambda catalogue: catalogue.publishers, _render_publishers),
    Service(
        XandrKind.PLACEMENT,
        lambda catalogue: catalogue.placements,
        _render_placements,
        filters=("publisher_id",),
    ),
    Service(
        XandrKind.PAYMENT_RULE,
        lambda catalogue: catalogue.payment_rules,
        _render_payment_rules,
        filters=("publisher_id",),
    ),
)
