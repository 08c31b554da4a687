"""The tag map (``ExportService.tag_map`` / ``download(..., SheetKind.TAG_MAP)``): each tracker's
tag as the original platform exported it next to adtrack's tag, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.domain.errors import NotFound, ValidationError
from adtrack.domain.model import Tracker, TrackerType
from adtrack.services.catalogue import CatalogueService
from adtrack.services.export_request import ExportRequest
from adtrack.services.exports import ExportService
from adtrack.services.tag_map import TAG_MAP_COLUMNS, TagMapRow
from adtrack.services.tag_sheets import SheetKind, render_sheet

PUBLIC = "https://track.example.com"
ALL_MACROS = ["CACHEBUSTER", "ANCOST", "REDIRECT_URL"]


@pytest.fixture
def catalogue(engine: Engine) -> CatalogueService:
    return CatalogueService(lambda: SqlUnitOfWork(engine))


class Imported:
    """Trackers as an import leaves them: the original platform's id recorded, and one
    tracker made in adtrack afterwards (no original id)."""

    def __init__(self, catalogue: CatalogueService) -> None:
        advertiser = catalogue.advertisers.create({"name": "Acme"})
        line_item = catalogue.line_items.create(
            {"name": "Acme spring", "advertiser_id": advertiser.id}
        )
        publisher = catalogue.publishers.create({"name": "Daily News"})
        base = {"line_item_id": line_item.id, "publisher_id": publisher.id}
        self.imp: Tracker = catalogue.trackers.create(
            {**base, "tracker_type": "impression", "name": "NAME", "original_id": 531}
        )
        self.click: Tracker = catalogue.trackers.create(
            {
                **base,
                "tracker_type": "click",
                "name": "CLIK TRAX",
                "code": "CLIK-1",
                "original_id": 21378,
                "landing_page_url": "https://acme.example/spring",
            }
        )
        self.native: Tracker = catalogue.trackers.create(
            {**base, "tracker_type": "impression", "name": "Made here"}
        )


@pytest.fixture
def imported(catalogue: CatalogueService) -> Imported:
    return Imported(catalogue)


def request(imported: Imported, **overrides: object) -> ExportRequest:
    body: dict[str, object] = {
        "impression_tracker_ids": [imported.imp.id, imported.native.id],
        "click_tracker_ids": [imported.click.id],
        "macros": ALL_MACROS,
    }
    body.update(overrides)
    return ExportRequest.from_mapping(body)


def by_key(rows: list[TagMapRow]) -> dict[tuple[int, str], TagMapRow]:
    return {(r.tracker_id, r.format.value): r for r in rows}


def test_old_tags_are_the_original_platforms_exports_and_new_tags_adtracks(
    catalogue: CatalogueService, imported: Imported
) -> None:
    service = ExportService(catalogue, PUBLIC)
    result = service.tag_map(request(imported))
    rows = by_key(result.rows)
    imp, click = imported.imp.id, imported.click.id
    # Every format of each tracker's type, in the order of the request.
    assert [(r.tracker_id, r.format.value) for r in result.rows] == [
        (imp, "javascript"),
        (imp, "pixel"),
        (imp, "url"),
        (imported.native.id, "javascript"),
        (imported.native.id, "pixel"),
        (imported.native.id, "url"),
        (click, "url"),
        (click, "anchor"),
    ]
    pixel = rows[(imp, "pixel")]
    assert pixel.original_id == 531 and pixel.name == "NAME"
    assert pixel.tracker_type is TrackerType.IMPRESSION
    # The platform's own export ("Export Trackers", secure pixel, all three macros).
    assert pixel.old_tag == (
        "<!-- Imp Tracker - NAME - DO NOT MODIFY -->"
        '<img src="https://secure.adnxs.com/imptr?id=531&cachebuster=[CACHEBUSTER]'
        '&ancost=[ANCOST]&t=2&redir=[REDIRECT_URL]" width="1" height="1" />'
        "<!-- End of Imp Tracker -->"
    )
    assert pixel.new_tag == pixel.old_tag.replace(
        "https://secure.adnxs.com/imptr?id=531&", f"{PUBLIC}/imptr?id={imp}&"
    )
    assert rows[(imp, "javascript")].old_tag == (
        "<!-- Imp Tracker - NAME - DO NOT MODIFY -->"
        '<script src="https://secure.adnxs.com/imptr?id=531&cachebuster=[CACHEBUSTER]'
        '&ancost=[ANCOST]&t=1&redir=[REDIRECT_URL]" type="text/javascript"></script>'
        "<!-- End of Imp Tracker -->"
    )
    assert rows[(imp, "url")].old_tag == (
        "https://secure.adnxs.com/imptr?id=531&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]"
        "&t=2&redir=[REDIRECT_URL]"
    )
    assert rows[(click, "anchor")].old_tag == (
        '<!-- Click Tracker - CLIK TRAX --><a href="https://secure.adnxs.com/clktrb?id=21378'
        '&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]">YOUR TEXT HERE</a>'
        "<!-- End of Click Tracker -->"
    )
    assert rows[(click, "url")].new_tag == (
        f"{PUBLIC}/clktrb?id={click}&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]"
    )
    # A tracker without an original id keeps its own id in the old tag, and is named.
    native = rows[(imported.native.id, "url")]
    assert native.original_id is None
    assert native.old_tag.startswith(f"https://secure.adnxs.com/imptr?id={imported.native.id}&")
    assert result.warnings == [
        f"tracker(s) without an original id: their old tag uses their own id: {imported.native.id}"
    ]


def test_the_requested_format_old_host_preset_and_code(
    catalogue: CatalogueService, imported: Imported
) -> None:
    service = ExportService(catalogue, PUBLIC)
    result = service.tag_map(
        request(imported, format="anchor", preset="gam", use_code=True),
        old_host="http://ib.adnxs.com",
    )
    rows = by_key(result.rows)
    imp, click = imported.imp.id, imported.click.id
    # anchor fits click trackers; impression trackers get their default (pixel), as in exports.
    assert sorted(rows) == sorted(
        [(imp, "pixel"), (imported.native.id, "pixel"), (click, "anchor")]
    )
    # The old tag as the platform's example shows it (ib.adnxs.com, http), its own placeholders;
    # the new one spelled for the chosen ad server and by code.
    assert rows[(click, "anchor")].old_tag == (
        '<!-- Click Tracker - CLIK TRAX --><a href="http://ib.adnxs.com/clktrb?id=21378'
        '&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]">YOUR TEXT HERE</a>'
        "<!-- End of Click Tracker -->"
    )
    assert rows[(click, "anchor")].new_tag == (
        f'<!-- Click Tracker - CLIK TRAX --><a href="{PUBLIC}/clktrb?code=CLIK-1'
        '&cachebuster=%%CACHEBUSTER%%&ancost=[ANCOST]&redir=%%DEST_URL%%">YOUR TEXT HERE</a>'
        "<!-- End of Click Tracker -->"
    )
    # The secure pixel is https on the old platform too.
    assert "https://ib.adnxs.com/imptr?id=531&" in rows[(imp, "pixel")].old_tag
    assert any("does not apply to impression trackers" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("old_host", "base"),
    [
        (None, "https://secure.adnxs.com"),
        ("  ", "https://secure.adnxs.com"),
        ("ib.adnxs.com", "https://ib.adnxs.com"),
        ("HTTP://ib.adnxs.com/", "http://ib.adnxs.com"),
        ("https://tags.example.net:8443", "https://tags.example.net:8443"),
    ],
)
def test_old_host_forms(
    catalogue: CatalogueService, imported: Imported, old_host: str | None, base: str
) -> None:
    result = ExportService(catalogue, PUBLIC).tag_map(
        request(imported, format="url", impression_tracker_ids=[], macros=[]), old_host=old_host
    )
    [row] = result.rows
    assert row.old_tag == f"{base}/clktrb?id=21378"


@pytest.mark.parametrize(
    "old_host", ["ftp://secure.adnxs.com", "secure.adnxs.com/?x=1", 'a"b.example', "https://"]
)
def test_a_bad_old_host_is_refused_naming_the_field(
    catalogue: CatalogueService, imported: Imported, old_host: str
) -> None:
    with pytest.raises(ValidationError) as err:
        ExportService(catalogue, PUBLIC).tag_map(request(imported), old_host=old_host)
    assert err.value.field == "old_host"


def test_selection_is_checked_like_an_export(
    catalogue: CatalogueService, imported: Imported
) -> None:
    service = ExportService(catalogue, PUBLIC)
    with pytest.raises(NotFound) as err:
        service.tag_map(request(imported, click_tracker_ids=[imported.imp.id]))
    assert err.value.field == "click_tracker_ids"


def test_the_tag_map_file_is_a_bulk_tool_csv(
    catalogue: CatalogueService, imported: Imported
) -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    service = ExportService(catalogue, PUBLIC, clock=lambda: at)
    downloaded = service.download(request(imported), SheetKind.TAG_MAP, old_host="ib.adnxs.com")
    sheet = downloaded.sheet
    assert sheet.filename == "adtrack-tag-map-20260301-120000.csv"
    assert sheet.media_type == "text/csv; charset=utf-8"
    assert sheet.data.startswith("\ufeff".encode())
    text = sheet.data.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(TAG_MAP_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert downloaded.rows == len(rows) == 8
    assert downloaded.warnings  # the tracker without an original id
    expected = service.tag_map(request(imported), old_host="ib.adnxs.com").rows
    assert [(r["old_tag"], r["new_tag"]) for r in rows] == [
        (e.old_tag, e.new_tag) for e in expected
    ]
    pixel = next(
        r for r in rows if r["tracker_id"] == str(imported.imp.id) and r["format"] == "pixel"
    )
    assert pixel["original_id"] == "531" and pixel["tracker_type"] == "impression"
    native = next(r for r in rows if r["tracker_id"] == str(imported.native.id))
    assert native["original_id"] == ""


def test_old_host_applies_to_the_tag_map_only(
    catalogue: CatalogueService, imported: Imported
) -> None:
    service = ExportService(catalogue, PUBLIC)
    with pytest.raises(ValidationError) as err:
        service.download(request(imported), SheetKind.CSV, old_host="ib.adnxs.com")
    assert err.value.field == "old_host"
    with pytest.raises(ValueError, match="tag map"):
        render_sheet([], SheetKind.TAG_MAP, datetime(2026, 3, 1, tzinfo=UTC))
