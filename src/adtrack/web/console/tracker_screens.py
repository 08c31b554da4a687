"""The console's two tracker screens (Creative > Impression Trackers, Creative > Click
Trackers): their URLs, titles and the words of their dialogs. The pages are in
``routes_trackers.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adtrack.domain.model import Tracker, TrackerType
from adtrack.services.catalogue import CatalogueService, TrackerCatalogue

__all__ = ["CLICK", "IMPRESSION", "TRACKER_SCREENS", "TrackerScreen", "screen_of"]


@dataclass(frozen=True)
class TrackerScreen:
    """The pages of one tracker type: its list, its create/edit dialog and its names."""

    tracker_type: TrackerType
    slug: str  # "impression-trackers"
    title: str  # "Impression Trackers"
    label: str  # "impression tracker"
    short: str  # "Imp Tracker" (the seed pages' section and button names)
    objects: Callable[[CatalogueService], TrackerCatalogue]  # the service's trackers of the type

    @property
    def details_legend(self) -> str:
        return f"{self.short} Details"

    @property
    def create_title(self) -> str:
        return "Create New " + ("Impression Tracker" if self.is_impression else "Click Tracker")

    @property
    def create_button(self) -> str:
        return f"Create {self.short}"

    @property
    def is_impression(self) -> bool:
        return self.tracker_type is TrackerType.IMPRESSION


IMPRESSION = TrackerScreen(
    TrackerType.IMPRESSION,
    "impression-trackers",
    "Impression Trackers",
    "impression tracker",
    "Imp Tracker",
    lambda catalogue: catalogue.impression_trackers,
)
CLICK = TrackerScreen(
    TrackerType.CLICK,
    "click-trackers",
    "Click Trackers",
    "click tracker",
    "Click Tracker",
    lambda catalogue: catalogue.click_trackers,
)
TRACKER_SCREENS = {s.slug: s for s in (IMPRESSION, CLICK)}


def screen_of(tracker: Tracker) -> TrackerScreen:
    return IMPRESSION if tracker.tracker_type is TrackerType.IMPRESSION else CLICK
