"""The catalogue import of the original platform's dumps (``CatalogueImport`` on
``read_path``/``read_uploads``), on SQLite and PostgreSQL: a full paged dump of every service
with ids kept, dry run, an idempotent re-run, an update run, ids taken, every refusal (naming
the file, the object and the field) and a dump failing half-way leaving nothing behind."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.domain.model import FilterAction, PricingType, RevenueType, State, TrackerType
from adtrack.services.catalogue import CatalogueService
from adtrack.services.xandr.catalogue_import import CatalogueImport, ImportRefused, ImportReport
from adtrack.services.xandr.dump_files import Dump, DumpError, DumpLimits, read_path, read_uploads
from tests.support.xandr_dump import (
    XandrCatalogue,
    build_catalogue,
    dump_files,
    singular_response,
    write_folder,
    zip_bytes,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CATALOGUE_TABLES = (
    t.advertisers,
    t.line_items,
    t.publishers,
    t.placements,
    t.payment_rules,
    t.trackers,
)


@pytest.fixture
def catalogue(engine: Engine) -> CatalogueService:
    return CatalogueService(partial(SqlUnitOfWork, engine))


@pytest.fixture
def importer(engine: Engine, catalogue: CatalogueService) -> CatalogueImport:
    return CatalogueImport(catalogue, partial(SqlUnitOfWork, engine), lambda: NOW)


def rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in CATALOGUE_TABLES
        }


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.max(t.catalogue_version.c.version), 0))
            ).scalar_one()
        )


def folder_dump(tmp_path: Path, source: XandrCatalogue, page_size: int = 3) -> Dump:
    return read_path(write_folder(tmp_path / "dump", source, page_size))


def test_a_full_paged_dump_of_every_service_keeps_ids_and_maps_each_field(
    importer: CatalogueImport, catalogue: CatalogueService, engine: Engine, tmp_path: Path
) -> None:
    source = build_catalogue()
    report = importer.run(folder_dump(tmp_path, source), dry_run=False)
    assert report.applied and not report.refused() and not report.new_ids()
    counts = report.counts()
    assert {kind: c["create"] for kind, c in counts.items()} == {
        kind: len(objects) for kind, objects in source.objects.items()
    }
    assert list(counts) == [
        "advertiser",
        "publisher",
        "line-item",
        "placement",
        "payment-rule",
        "imptracker",
        "clicktracker",
    ]
    o = source.objects
    # every object under its original id, recording it and its code
    advertiser = catalogue.advertisers.get(o["advertiser"][0]["id"])
    assert (advertiser.name, advertiser.original_id) == ("Advertiser 0", o["advertiser"][0]["id"])
    line_item = catalogue.line_items.get(o["line-item"][0]["id"])
    assert line_item.advertiser_id == advertiser.id and line_item.code == "li-0-0"
    assert line_item.original_code == "li-0-0"
    assert (line_item.revenue_type, line_item.revenue_value_micros) == (RevenueType.CPM, 2_500_000)
    # EST5EDT midnight; the inclusive end second becomes an exclusive end
    assert line_item.start_date == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert line_item.end_date == datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    publisher_json = o["publisher"][0]
    publisher = catalogue.publishers.get(publisher_json["id"])
    assert publisher.state is State.ACTIVE
    base = catalogue.payment_rules.get(publisher_json["base_payment_rule_id"])
    assert base.is_base and base.publisher_id == publisher.id
    assert (base.pricing_type, base.revshare_ppm) == (PricingType.REVSHARE, 600_000)
    base_entry = next(e for e in report.entries if e.original_id == base.id)
    assert any(n.field == "priority" for n in base_entry.notes)  # priority 1: not kept
    rule_json = next(r for r in o["payment-rule"] if r["code"] == "cpm_rule_0")
    rule = catalogue.payment_rules.get(rule_json["id"])
    assert (rule.pricing_type, rule.cost_cpm_micros, rule.priority) == (PricingType.CPM, 400_000, 8)
    assert rule.publisher_id == publisher.id  # from the trackers using it
    assert rule.advertiser_filter is FilterAction.INCLUDE
    assert rule.advertiser_ids == frozenset({o["advertiser"][0]["id"]})
    placement = catalogue.placements.get(o["placement"][0]["id"])
    assert placement.publisher_id == publisher.id
    imp_json = o["imptracker"][0]
    imp = catalogue.impression_trackers.get(imp_json["id"])
    assert imp.tracker_type is TrackerType.IMPRESSION and imp.original_id == imp_json["id"]
    assert (imp.line_item_id, imp.publisher_id, imp.placement_id, imp.payment_rule_id) == (
        imp_json["line_item"]["id"],
        imp_json["publisher"]["id"],
        imp_json["tag"][0]["id"],
        imp_json["payment_rule"]["id"],
    )
    click_json = o["clicktracker"][-1]
    click = catalogue.click_trackers.get(click_json["id"])
    assert click.landing_page_url == click_json["click_url"] and click.payment_rule_id is None
    # a field without an equivalent is a note on its object, never dropped silently
    placement_entry = next(e for e in report.entries if e.original_id == placement.id)
    assert any(n.field == "site_id" for n in placement_entry.notes)
    # searchable by original id
    assert catalogue.impression_trackers.list(original_id=imp_json["id"]).items == [imp]


def test_dry_run_shows_the_plan_and_writes_nothing(
    importer: CatalogueImport, engine: Engine, tmp_path: Path
) -> None:
    source = build_catalogue()
    before = (rows(engine), version(engine))
    report = importer.run(folder_dump(tmp_path, source), dry_run=True)
    assert report.dry_run and not report.applied
    assert sum(c["create"] for c in report.counts().values()) == source.total()
    assert all(e.id == e.original_id for e in report.entries)
    assert (rows(engine), version(engine)) == before


def test_running_the_same_dump_again_changes_nothing(
    importer: CatalogueImport, engine: Engine, tmp_path: Path
) -> None:
    dump = folder_dump(tmp_path, build_catalogue())
    importer.run(dump, dry_run=False)
    before = (rows(engine), version(engine))
    again = importer.run(dump, dry_run=False)
    assert {a for c in again.counts().values() for a, n in c.items() if n} == {"unchanged"}
    assert (rows(engine), version(engine)) == before


def test_a_newer_dump_updates_what_changed_and_creates_what_is_new(
    importer: CatalogueImport, catalogue: CatalogueService, tmp_path: Path
) -> None:
    source = build_catalogue()
    importer.run(read_uploads(dump_files(source)), dry_run=False)
    newer = copy.deepcopy(source)
    o = newer.objects
    o["imptracker"][0]["name"] = "Renamed tracker"
    o["line-item"][1]["state"] = "inactive"
    rule = next(r for r in o["payment-rule"] if r["code"] == "cpm_rule_1")
    rule["cost_cpm"] = 0.55
    base = next(r for r in o["payment-rule"] if r["name"] == "Base Payment Rule")
    base["revshare"] = 0.7
    added = {**o["clicktracker"][0], "id": 990_001, "name": "Added later"}
    o["clicktracker"].append(added)
    report = importer.run(read_uploads(dump_files(newer)), dry_run=False)
    updated = {
        (e.kind.value, e.original_id): e.changes for e in report.entries if e.action == "update"
    }
    assert updated == {
        ("imptracker", o["imptracker"][0]["id"]): ("name",),
        ("line-item", o["line-item"][1]["id"]): ("state",),
        ("payment-rule", rule["id"]): ("cost_cpm_micros",),
        ("payment-rule", base["id"]): ("revshare_ppm",),
    }
    created = [e for e in report.entries if e.action == "create"]
    assert [(e.original_id, e.id) for e in created] == [(990_001, 990_001)]
    assert catalogue.impression_trackers.get(o["imptracker"][0]["id"]).name == "Renamed tracker"
    assert catalogue.line_items.get(o["line-item"][1]["id"]).state is State.INACTIVE
    assert catalogue.payment_rules.get(rule["id"]).cost_cpm_micros == 550_000
    assert catalogue.payment_rules.get(base["id"]).revshare_ppm == 700_000
    assert catalogue.click_trackers.get(990_001).name == "Added later"


def test_taken_ids_get_new_ones_and_references_follow(
    importer: CatalogueImport, catalogue: CatalogueService, tmp_path: Path
) -> None:
    source = build_catalogue()
    o = source.objects
    # adtrack's own objects already hold some of the dump's ids
    own = catalogue.advertisers.create({"name": "Ours"})
    first_tracker = o["imptracker"][0]["id"]
    mine = [catalogue.advertisers.create({"name": f"Ours {n}"}) for n in range(first_tracker)]
    assert own.id == 1 and mine[-1].id >= first_tracker
    line_item = catalogue.line_items.create({"name": "Ours", "advertiser_id": own.id})
    publisher = catalogue.publishers.create({"name": "Ours"})
    catalogue.impression_trackers.create_many(
        [
            {
                "id": first_tracker,
                "name": "Ours",
                "line_item_id": line_item.id,
                "publisher_id": publisher.id,
            }
        ],
        keep_ids=True,
    )
    report = importer.run(read_uploads(dump_files(source)), dry_run=False)
    moved = {(e.kind.value, e.original_id): e.id for e in report.new_ids()}
    assert ("imptracker", first_tracker) in moved
    assert all(kind in ("advertiser", "imptracker") for kind, _ in moved)
    advertiser_json = o["advertiser"][0]
    new_advertiser = moved[("advertiser", advertiser_json["id"])]
    li = catalogue.line_items.get(o["line-item"][0]["id"])
    assert li.advertiser_id == new_advertiser  # the reference follows the new id
    tracker = catalogue.impression_trackers.list(original_id=first_tracker).items[0]
    assert tracker.id == moved[("imptracker", first_tracker)] and tracker.name.startswith("Imp")
    # the re-run finds them again by their original ids
    again = importer.run(read_uploads(dump_files(source)), dry_run=False)
    assert {e.action for e in again.entries} == {"unchanged"}


def test_singular_envelopes_zips_and_pages_in_any_order(
    importer: CatalogueImport, catalogue: CatalogueService
) -> None:
    source = build_catalogue(
        advertisers=1,
        line_items_per_advertiser=1,
        publishers=1,
        placements_per_publisher=1,
        trackers_per_placement=1,
    )
    files = dump_files(source, page_size=1)
    tracker = source.objects["imptracker"][0]
    files = [f for f in files if not f[0].startswith("imptracker")]
    dump = read_uploads(
        [
            ("dump.zip", zip_bytes(files[::-1])),
            ("imptracker-1425.json", singular_response("imptracker", tracker)),
        ]
    )
    report = importer.run(dump, dry_run=False)
    assert not report.refused()
    assert catalogue.impression_trackers.get(tracker["id"]).name == tracker["name"]
    entry = next(e for e in report.entries if e.kind.value == "imptracker")
    assert (entry.source, entry.position) == ("imptracker-1425.json", "imptracker")


# ---- refusals -------------------------------------------------------------------------------


def refused(importer: CatalogueImport, dump: Dump) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        importer.run(dump, dry_run=False)
    return caught.value


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (b'{"response": {"status": "OK", "imptrackers": [', "broken.json", "not valid JSON"),
        (b'{"imptrackers": []}', "broken.json", 'expected {"response"'),
        (
            b'{"response": {"error_id": "NOAUTH", "error": "Authentication failed"}}',
            "broken.json: response.status",
            "Authentication failed",
        ),
        (
            b'{"response": {"status": "OK", "creatives": []}}',
            "broken.json: response.creatives",
            "not a service",
        ),
        (b'{"response": {"status": "OK", "count": 0}}', "broken.json", "no objects"),
        (
            b'{"response": {"status": "OK", "imptrackers": [7]}}',
            "broken.json: imptrackers[0]",
            "must be an object",
        ),
    ],
)
def test_unreadable_files_are_refused_naming_the_file(
    field: str, message: str, content: bytes
) -> None:
    good = dump_files(build_catalogue())
    with pytest.raises(DumpError) as caught:
        read_uploads([*good[:3], ("broken.json", content)])
    assert caught.value.field == field and message in caught.value.message


def test_a_broken_zip_and_the_limits_are_refused(tmp_path: Path) -> None:
    files = dump_files(build_catalogue())
    with pytest.raises(DumpError) as caught:
        read_uploads([("dump.zip", b"PK\x03\x04 not really")])
    assert caught.value.field == "dump.zip"
    total = sum(len(data) for _, data in files)
    with pytest.raises(DumpError) as caught:
        read_uploads(files, DumpLimits(max_bytes=total - 1))
    assert "ADTRACK_IMPORT_MAX_BYTES" in caught.value.message
    # a zip counts as unpacked
    with pytest.raises(DumpError) as caught:
        read_uploads([("dump.zip", zip_bytes(files))], DumpLimits(max_bytes=total - 1))
    assert "ADTRACK_IMPORT_MAX_BYTES" in caught.value.message
    with pytest.raises(DumpError) as caught:
        read_uploads(files, DumpLimits(max_objects=10))
    assert "ADTRACK_IMPORT_MAX_OBJECTS" in caught.value.message
    (tmp_path / "empty").mkdir()
    with pytest.raises(DumpError):
        read_path(tmp_path / "empty")


def _with(source: XandrCatalogue, kind: str, index: int, **changes: object) -> XandrCatalogue:
    changed = copy.deepcopy(source)
    changed.objects[kind][index].update(changes)
    return changed


@pytest.mark.parametrize(
    ("kind", "changes", "field", "message"),
    [
        ("imptracker", {"name": None}, "name", "is required"),
        ("imptracker", {"line_item": {"id": 4_242_424}}, "line_item.id", "neither in the dump"),
        ("line-item", {"revenue_type": "cpm", "revenue_value": "abc"}, "revenue_value", ""),
        ("payment-rule", {"pricing_type": "cpm", "cost_cpm": None}, "cost_cpm", "required"),
        ("clicktracker", {"click_url": "javascript:alert(1)"}, "click_url", "http"),
        ("placement", {"state": "paused"}, "state", "active"),
    ],
)
def test_an_object_that_cannot_be_imported_refuses_the_import(
    importer: CatalogueImport,
    engine: Engine,
    kind: str,
    changes: dict[str, object],
    field: str,
    message: str,
) -> None:
    source = _with(build_catalogue(), kind, 1, **changes)
    before = (rows(engine), version(engine))
    error = refused(importer, read_uploads(dump_files(source)))
    entry = error.report.refused()[0]
    assert entry.kind.value == kind and entry.original_id == source.objects[kind][1]["id"]
    assert entry.refused_field == field and message in (entry.refusal or "")
    assert error.field == f"{entry.source}: {entry.position}: {field}"
    assert entry.position == f"{kind}s[1]" and entry.source.startswith(kind)
    assert (rows(engine), version(engine)) == before


def test_a_dump_failing_half_way_leaves_nothing_behind(
    importer: CatalogueImport, engine: Engine
) -> None:
    """Advertisers, publishers, line items, placements and rules are written before the
    trackers; a tracker breaking a catalogue rule (a placement of another publisher) undoes
    all of them."""
    source = build_catalogue()
    o = source.objects
    other_publisher_placement = next(
        p for p in o["placement"] if p["publisher_id"] != o["imptracker"][-1]["publisher"]["id"]
    )
    o["imptracker"][-1]["tag"] = [{"id": other_publisher_placement["id"], "name": "x"}]
    before = (rows(engine), version(engine))
    error = refused(importer, read_uploads(dump_files(source)))
    entry = error.report.refused()[0]
    assert entry.original_id == o["imptracker"][-1]["id"]
    assert entry.refused_field == "tag.id" and "publisher" in (entry.refusal or "")
    assert (rows(engine), version(engine)) == before
    # the dry run of it says the same, and writes nothing either
    dry = importer.run(read_uploads(dump_files(source)), dry_run=True)
    assert [e.original_id for e in dry.refused()] == [entry.original_id]
    assert (rows(engine), version(engine)) == before


def test_a_report_serialises(importer: CatalogueImport) -> None:
    report: ImportReport = importer.run(read_uploads(dump_files(build_catalogue())), dry_run=True)
    body = orjson.loads(orjson.dumps(report.to_json()))
    assert body["dry_run"] is True and body["applied"] is False
    assert body["counts"]["imptracker"]["create"] == len(build_catalogue().objects["imptracker"])
    first = body["objects"][0]
    assert set(first) >= {"kind", "file", "object", "original_id", "action", "id", "id_kept"}


def test_a_payment_rule_whose_publisher_the_dump_does_not_say_is_refused(
    importer: CatalogueImport, engine: Engine
) -> None:
    source = build_catalogue()
    lonely = {
        **next(r for r in source.objects["payment-rule"] if r["code"] == "cpm_rule_0"),
        "id": 777_001,
        "code": "lonely",
    }
    source.objects["payment-rule"].append(lonely)
    error = refused(importer, read_uploads(dump_files(source)))
    entry = error.report.refused()[0]
    assert (entry.original_id, entry.refused_field) == (777_001, "publisher_id")
    assert "publisher is unknown" in (entry.refusal or "")
    # with its publisher_id (as payment-rule?publisher_id=... dumps give it) it is imported
    lonely["publisher_id"] = source.objects["publisher"][1]["id"]
    report = importer.run(read_uploads(dump_files(source)), dry_run=False)
    assert not report.refused()


def test_missing_pages_and_duplicates_are_warned_about(
    importer: CatalogueImport, catalogue: CatalogueService
) -> None:
    source = build_catalogue()
    files = dump_files(source, page_size=10)
    tracker_pages = [f for f in files if f[0].startswith("imptracker")]
    assert len(tracker_pages) > 1
    dropped = tracker_pages[-1]
    files = [f for f in files if f is not dropped]
    # the same tracker twice: the copy modified last wins
    first = copy.deepcopy(source.objects["imptracker"][0])
    older = {**first, "name": "Older name", "last_modified": "2020-01-01 00:00:00"}
    newer = {**first, "name": "Newer name", "last_modified": "2026-02-21 00:00:00"}
    files.append(("extra-1.json", singular_response("imptracker", newer)))
    files.append(("extra-2.json", singular_response("imptracker", older)))
    report = importer.run(read_uploads(files), dry_run=False)
    assert any("a page missing" in w and "imptracker" in w for w in report.warnings)
    assert any("more than once" in w for w in report.warnings)
    assert catalogue.impression_trackers.get(first["id"]).name == "Newer name"


def test_a_dump_in_parts_finds_what_earlier_parts_imported(
    importer: CatalogueImport, catalogue: CatalogueService
) -> None:
    source = build_catalogue()
    files = dump_files(source)
    first = [f for f in files if f[0].startswith(("advertiser", "line-item"))]
    rest = [f for f in files if f not in first]
    # an advertiser whose original id is taken here, so references must be translated
    catalogue.advertisers.create_many(
        [{"id": source.objects["line-item"][0]["id"], "name": "Ours"}], keep_ids=True
    )
    importer.run(read_uploads(first), dry_run=False)
    report = importer.run(read_uploads(rest), dry_run=False)
    assert not report.refused()
    tracker = source.objects["imptracker"][0]
    stored = catalogue.impression_trackers.get(tracker["id"])
    line_item = catalogue.line_items.list(original_id=tracker["line_item"]["id"]).items[0]
    assert stored.line_item_id == line_item.id
    assert stored.placement_id == tracker["tag"][0]["id"]


def test_an_original_id_beyond_adtracks_ids_is_kept_as_original_id_only(
    importer: CatalogueImport, catalogue: CatalogueService
) -> None:
    source = build_catalogue()
    big = 55_000_000_001  # a 64-bit id on the platform; adtrack's ids are 32-bit
    old = source.objects["advertiser"][0]["id"]
    source.objects["advertiser"][0]["id"] = big
    for line_item in source.objects["line-item"]:
        if line_item["advertiser_id"] == old:
            line_item["advertiser_id"] = big
            line_item["advertiser"]["id"] = big
    for tracker in source.objects["imptracker"] + source.objects["clicktracker"]:
        if tracker["advertiser_id"] == old:
            tracker["advertiser_id"] = big
    for rule in source.objects["payment-rule"]:
        for member in rule.get("filtered_advertisers") or []:
            if member["id"] == old:
                member["id"] = big
    report = importer.run(read_uploads(dump_files(source)), dry_run=False)
    entry = next(e for e in report.entries if e.original_id == big)
    assert entry.id_kept is False and entry.id is not None and entry.id < 2**31
    advertiser = catalogue.advertisers.list(original_id=big).items[0]
    assert advertiser.id == entry.id
    assert catalogue.line_items.list(advertiser_id=advertiser.id).total == 2
    again = importer.run(read_uploads(dump_files(source)), dry_run=False)
    assert {e.action for e in again.entries} == {"unchanged"}
