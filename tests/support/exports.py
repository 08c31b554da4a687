"""Helpers for the tag-export tests: a small catalogue to export from."""

from __future__ import annotations

from dataclasses import dataclass

from adtrack.domain.model import Tracker
from adtrack.services.catalogue import CatalogueService


@dataclass
class ExportWorld:
    """One advertiser, line item, publisher and placement; two impression trackers (one with a
    code and a placement, one without) and two click trackers (one with a landing page)."""

    line_item_id: int
    publisher_id: int
    placement_id: int
    imp_coded: Tracker
    imp_plain: Tracker
    click_landing: Tracker
    click_bare: Tracker


def make_world(catalogue: CatalogueService) -> ExportWorld:
    advertiser = catalogue.advertisers.create({"name": "Acme"})
    line_item = catalogue.line_items.create({"name": "Acme spring", "advertiser_id": advertiser.id})
    publisher = catalogue.publishers.create({"name": "Daily News"})
    placement = catalogue.placements.create({"name": "Top banner", "publisher_id": publisher.id})
    base = {"line_item_id": line_item.id, "publisher_id": publisher.id}
    return ExportWorld(
        line_item_id=line_item.id,
        publisher_id=publisher.id,
        placement_id=placement.id,
        imp_coded=catalogue.trackers.create(
            {
                **base,
                "tracker_type": "impression",
                "name": "Spring <banner> -->",
                "code": "SPRING/1&co=é",
                "placement_id": placement.id,
            }
        ),
        imp_plain=catalogue.trackers.create(
            {**base, "tracker_type": "impression", "name": '=HYPERLINK("x")'}
        ),
        click_landing=catalogue.trackers.create(
            {
                **base,
                "tracker_type": "click",
                "name": "CLIK TRAX",
                "code": "CLIK-1",
                "landing_page_url": "https://acme.example/spring?src=tracker",
            }
        ),
        click_bare=catalogue.trackers.create(
            {**base, "tracker_type": "click", "name": "Bare click"}
        ),
    )
