"""Impression and click trackers: one kind of object in one id space, told apart by
``tracker_type``. ``of_type`` gives the catalogue of one type (what the API's
``/impression-trackers`` and ``/click-trackers`` serve): its create sets the type, its list
filters on it, and an id of the other type is ``NotFound`` there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from adtrack.domain.errors import NotFound
from adtrack.domain.model import Tracker, TrackerType
from adtrack.domain.validation import clean_enum
from adtrack.services.catalogue.checks import check_tracker
from adtrack.services.catalogue.entity_specs import TRACKER
from adtrack.services.catalogue.kind_catalogue import KindCatalogue, is_id
from adtrack.services.ports import Page, UnitOfWork

__all__ = ["TrackerCatalogue"]


class TrackerCatalogue(KindCatalogue[Tracker]):
    """Trackers of both types (``tracker_type`` None) or of one.

    ``create``'s ``data["tracker_type"]`` is ``"impression"`` or ``"click"`` (set by a catalogue
    of one type); ``advertiser_id`` may be omitted (the line item's advertiser is used). Delete
    is always allowed. ``get``, ``update`` and ``delete`` also take a ``tracker_type`` to address
    only a tracker of that type.
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        clock: Callable[[], datetime],
        tracker_type: TrackerType | None = None,
    ) -> None:
        super().__init__(TRACKER, uow_factory, clock, check=check_tracker)
        self.tracker_type = tracker_type

    def of_type(self, tracker_type: TrackerType | str) -> TrackerCatalogue:
        wanted = clean_enum(TrackerType, tracker_type, "tracker_type")
        return TrackerCatalogue(self._uow_factory, self._clock, wanted)

    def create(self, data: Mapping[str, object]) -> Tracker:
        if self.tracker_type is not None:
            data = {**data, "tracker_type": self.tracker_type}
        return super().create(data)

    def _creating(self, data: object) -> Mapping[str, object]:
        data = super()._creating(data)
        if self.tracker_type is not None:
            data = {**data, "tracker_type": self.tracker_type}
        return data

    def get(self, id: int, tracker_type: TrackerType | str | None = None) -> Tracker:
        if tracker_type is not None:
            return self.of_type(tracker_type).get(id)
        return super().get(id)

    def update(
        self,
        id: int,
        changes: Mapping[str, object],
        tracker_type: TrackerType | str | None = None,
    ) -> Tracker:
        if tracker_type is not None:
            return self.of_type(tracker_type).update(id, changes)
        return super().update(id, changes)

    def delete(self, id: int, tracker_type: TrackerType | str | None = None) -> None:
        if tracker_type is not None:
            return self.of_type(tracker_type).delete(id)
        return super().delete(id)

    def list(
        self,
        *,
        q: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 50,
        **filters: object,
    ) -> Page[Tracker]:
        """Filters: ``tracker_type``, ``advertiser_id``, ``line_item_id``, ``publisher_id``,
        ``placement_id``, ``payment_rule_id``."""
        if self.tracker_type is not None:
            filters = {**filters, "tracker_type": self.tracker_type}
        return super().list(q=q, state=state, offset=offset, limit=limit, **filters)

    def _load(self, uow: UnitOfWork, id: int) -> Tracker:
        tracker = uow.trackers.get(id) if is_id(id) else None
        if tracker is None or (
            self.tracker_type is not None and tracker.tracker_type is not self.tracker_type
        ):
            label = "tracker" if self.tracker_type is None else f"{self.tracker_type.value} tracker"
            raise NotFound("id", f"{label} {id} does not exist")
        return tracker
