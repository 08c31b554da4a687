"""Trackers recovered from exported tag files (``services/xandr/tag_recovery.py``) on SQLite and
PostgreSQL: created under the ids their tags carry, ids taken reported and left alone, a second
run changing nothing, and a hit on the recovered id counting for the right line item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from adtrack.bootstrap import build_catalogue, build_tag_recovery
from adtrack.config import Settings
from adtrack.domain.errors import DomainError, ValidationError
from adtrack.domain.model import TrackerType
from adtrack.services.catalogue import CatalogueService
from adtrack.services.xandr.tag_recovery import TagAssignment, TagRecoveryService
from tests.support.tag_files import CLICK, DOC_PIXEL, PIXEL, SCRIPT


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> tuple[CatalogueService, TagRecoveryService, Any]:
    settings = Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path)})
    catalogue = build_catalogue(settings, engine)
    advertiser = catalogue.advertisers.create({"name": "Acme"})
    line_item = catalogue.line_items.create({"advertiser_id": advertiser.id, "name": "Spring"})
    publisher = catalogue.publishers.create({"name": "Daily News"})
    other = catalogue.publishers.create({"name": "Other"})
    placement = catalogue.placements.create({"publisher_id": publisher.id, "name": "Top"})
    elsewhere = catalogue.placements.create({"publisher_id": other.id, "name": "Elsewhere"})
    ids = {
        "line_item": line_item.id,
        "publisher": publisher.id,
        "placement": placement.id,
        "elsewhere": elsewhere.id,
    }
    return catalogue, build_tag_recovery(settings, engine, catalogue), ids


TAGS = "\n".join([PIXEL, DOC_PIXEL, SCRIPT, CLICK]).encode()


def test_trackers_keep_the_ids_their_tags_carry(world: Any) -> None:
    catalogue, service, ids = world
    assignment = TagAssignment(ids["line_item"], ids["publisher"], ids["placement"])
    dry = service.recover([("tags.html", TAGS)], assignment, dry_run=True)
    assert sorted(c.id for c in dry.to_create) == [531, 532, 2766, 21378]
    assert catalogue.trackers.list().items == []

    done = service.recover([("tags.html", TAGS)], assignment)
    assert sorted(done.created_ids) == [531, 532, 2766, 21378]
    pixel = catalogue.trackers.get(531)
    assert (pixel.tracker_type, pixel.name, pixel.original_id) == (
        TrackerType.IMPRESSION,
        "Spring sale",
        531,
    )
    assert (pixel.line_item_id, pixel.publisher_id, pixel.placement_id) == (
        ids["line_item"],
        ids["publisher"],
        ids["placement"],
    )
    assert catalogue.trackers.get(2766).name == "Imp Tracker 2766"
    assert catalogue.click_trackers.get(21378).name == "CLIK TRAX"
    assert any("no name in the file" in n.message for n in done.notes)

    again = service.recover([("tags.html", TAGS)], assignment)
    assert again.to_create == [] and len(again.unchanged) == 4 and again.created_ids == []


def test_ids_taken_are_reported_not_overwritten(world: Any) -> None:
    catalogue, service, ids = world
    mine = catalogue.impression_trackers.create(
        {"name": "Mine", "line_item_id": ids["line_item"], "publisher_id": ids["publisher"]}
    )
    tags = f"https://ib.adnxs.com/imptr?id={mine.id}&t=2\n{PIXEL}".encode()
    result = service.recover([("t.txt", tags)], TagAssignment(ids["line_item"], ids["publisher"]))
    assert [c.id for c, _ in result.taken] == [mine.id]
    assert "taken by impression tracker 'Mine'" in result.as_json()["taken"][0]["message"]
    assert catalogue.trackers.get(mine.id).name == "Mine"
    assert result.created_ids == [531]


def test_refusals_name_the_field(world: Any) -> None:
    catalogue, service, ids = world
    with pytest.raises(ValidationError) as no_tags:
        service.recover(
            [("t.txt", b"nothing here")], TagAssignment(ids["line_item"], ids["publisher"])
        )
    assert no_tags.value.field == "file"
    with pytest.raises(DomainError) as unknown:
        service.recover([("t.txt", TAGS)], TagAssignment(999, ids["publisher"]))
    assert unknown.value.field == "line_item_id"
    with pytest.raises(DomainError) as no_placement:
        service.recover([("t.txt", TAGS)], TagAssignment(ids["line_item"], ids["publisher"], 999))
    assert (no_placement.value.field, no_placement.value.status) == ("placement_id", 404)
    with pytest.raises(DomainError) as elsewhere:
        service.recover(
            [("t.txt", TAGS)], TagAssignment(ids["line_item"], ids["publisher"], ids["elsewhere"])
        )
    assert elsewhere.value.field.endswith("placement_id")
    assert catalogue.trackers.list().items == []  # all or nothing
    small = TagRecoveryService(catalogue, service._tracker_ids, max_bytes=10)  # noqa: SLF001
    with pytest.raises(ValidationError, match="ADTRACK_TAG_FILE_MAX_BYTES"):
        small.recover([("t.txt", TAGS)], TagAssignment(ids["line_item"], ids["publisher"]))
