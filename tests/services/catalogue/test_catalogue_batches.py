"""Bulk writes of the catalogue (``create_many``, ``update_many``, ``deactivate_many``) on
SQLite and PostgreSQL: all or nothing in one transaction and one catalogue version, each
refusal naming its item, id and field, the single writes' rules, ids kept when asked and free,
and the change log collectors read."""

from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.catalogue_version import MAX_RECORDED_CHANGES
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.domain.errors import BatchRefused
from adtrack.domain.model import State, TrackerType
from adtrack.services.catalogue import CatalogueService


@pytest.fixture
def service(engine: Engine) -> CatalogueService:
    return CatalogueService(partial(SqlUnitOfWork, engine))


def chain(service: CatalogueService) -> dict[str, int]:
    advertiser = service.advertisers.create({"name": "Acme"}).id
    line_item = service.line_items.create({"name": "Spring", "advertiser_id": advertiser}).id
    publisher = service.publishers.create({"name": "Daily"}).id
    placement = service.placements.create({"name": "Top", "publisher_id": publisher}).id
    other_publisher = service.publishers.create({"name": "Weekly"}).id
    other_placement = service.placements.create({"name": "Side", "publisher_id": other_publisher})
    return {
        "advertiser": advertiser,
        "line_item": line_item,
        "publisher": publisher,
        "placement": placement,
        "other_placement": other_placement.id,
    }


def tracker_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.trackers)).scalar_one())


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(t.catalogue_version.c.version)).scalar_one())


def test_create_many_in_one_version_with_its_changes_logged(
    service: CatalogueService, engine: Engine
) -> None:
    c = chain(service)
    before = version(engine)
    items = [
        {
            "name": f"Imp {n}",
            "code": f"IMP-{n}",
            "line_item_id": c["line_item"],
            "publisher_id": c["publisher"],
            "placement_id": c["placement"],
        }
        for n in range(300)
    ]
    created = service.impression_trackers.create_many(items)
    assert [tracker.name for tracker in created] == [f"Imp {n}" for n in range(300)]
    assert all(tracker.tracker_type is TrackerType.IMPRESSION for tracker in created)
    assert all(tracker.advertiser_id == c["advertiser"] for tracker in created)  # the line item's
    assert len({tracker.id for tracker in created}) == 300
    assert version(engine) == before + 1
    with engine.connect() as conn:
        logged = conn.execute(
            select(t.catalogue_changes.c.entity_id).where(
                t.catalogue_changes.c.version == before + 1
            )
        ).scalars()
        assert set(logged) == {tracker.id for tracker in created}
    listed = service.impression_trackers.list(q="IMP-299")
    assert [tracker.id for tracker in listed.items] == [created[-1].id]
    # a single create after a batch takes the next free id (PostgreSQL's sequence was moved)
    single = service.impression_trackers.create(
        {"name": "After", "line_item_id": c["line_item"], "publisher_id": c["publisher"]}
    )
    assert single.id > max(tracker.id for tracker in created)


def test_one_bad_item_refuses_the_batch_naming_each_item_and_field(
    service: CatalogueService, engine: Engine
) -> None:
    c = chain(service)
    good = {"name": "Good", "line_item_id": c["line_item"], "publisher_id": c["publisher"]}
    before_version, before_count = version(engine), tracker_count(engine)
    items = [
        good,
        {**good, "placement_id": c["other_placement"]},  # a placement of another publisher
        {**good, "name": ""},
        {**good, "line_item_id": 99_999},
        {**good, "code": "TWICE"},
        {**good, "code": "TWICE"},  # clashes with the item before it
        "not an object",
    ]
    with pytest.raises(BatchRefused) as refused:
        service.impression_trackers.create_many(items)  # type: ignore[arg-type]
    found = [(r.item, r.field) for r in refused.value.refusals]
    assert found == [
        (1, "placement_id"),
        (2, "name"),
        (3, "line_item_id"),
        (5, "code"),
        (6, "item"),
    ]
    assert refused.value.total == 5
    assert "nothing was written" in refused.value.message
    assert (version(engine), tracker_count(engine)) == (before_version, before_count)


def test_update_many_applies_each_items_changes_or_none(
    service: CatalogueService, engine: Engine
) -> None:
    c = chain(service)
    base = {"line_item_id": c["line_item"], "publisher_id": c["publisher"]}
    a, b, d = service.impression_trackers.create_many(
        [
            {"name": "A", "code": "A", **base},
            {"name": "B", "code": "B", **base},
            {"name": "D", **base},
        ]
    )
    # an item sees the items before it: b takes the code a gave up
    updated = service.impression_trackers.update_many(
        [{"id": a.id, "code": "C"}, {"id": b.id, "code": "A"}, {"id": d.id, "name": "D"}]
    )
    assert [(x.id, x.code) for x in updated] == [(a.id, "C"), (b.id, "A"), (d.id, None)]
    assert service.impression_trackers.get(b.id).code == "A"
    assert updated[2].last_modified == d.last_modified  # unchanged: not written
    before = version(engine)
    with pytest.raises(BatchRefused) as refused:
        service.impression_trackers.update_many(
            [
                {"id": a.id, "name": "A2"},
                {"id": b.id, "placement_id": c["other_placement"]},
                {"id": 99_999, "name": "missing"},
                {"id": a.id, "name": "again"},
            ]
        )
    assert sorted((r.item, r.id, r.field) for r in refused.value.refusals) == [
        (1, b.id, "placement_id"),
        (2, 99_999, "id"),
        (3, a.id, "id"),
    ]
    assert service.impression_trackers.get(a.id).name == "A"
    assert version(engine) == before


def test_deactivate_many(service: CatalogueService) -> None:
    c = chain(service)
    base = {"line_item_id": c["line_item"], "publisher_id": c["publisher"]}
    imps = service.impression_trackers.create_many([{"name": f"I{n}", **base} for n in range(3)])
    clicks = service.click_trackers.create_many([{"name": "C", **base}])
    done = service.impression_trackers.deactivate_many([imps[0].id, imps[2].id])
    assert [x.state for x in done] == [State.INACTIVE, State.INACTIVE]
    assert service.impression_trackers.get(imps[1].id).state is State.ACTIVE
    # a click tracker is not an impression tracker: nothing is deactivated
    with pytest.raises(BatchRefused) as refused:
        service.impression_trackers.deactivate_many([imps[1].id, clicks[0].id])
    assert [(r.item, r.id, r.field) for r in refused.value.refusals] == [(1, clicks[0].id, "id")]
    assert service.impression_trackers.get(imps[1].id).state is State.ACTIVE


def test_keep_ids_uses_free_ids_and_gives_taken_ones_new_ids(
    service: CatalogueService, engine: Engine
) -> None:
    c = chain(service)
    base = {"line_item_id": c["line_item"], "publisher_id": c["publisher"]}
    taken = service.impression_trackers.create({"name": "Taken", **base}).id
    created = service.impression_trackers.create_many(
        [
            {"id": 1425, "name": "Kept", **base},
            {"id": taken, "name": "Was taken", **base},
            {"id": 1425, "name": "Asked twice", **base},
            {"name": "No id", **base},
            {"id": 9_000_000, "name": "Kept too", **base},
        ],
        keep_ids=True,
    )
    ids = [x.id for x in created]
    assert ids[0] == 1425 and ids[4] == 9_000_000
    assert len(set(ids)) == 5 and taken not in ids
    assert all(i > 9_000_000 for i in (ids[1], ids[2], ids[3]))
    # the next single create continues after them (PostgreSQL: the sequence was moved)
    after = service.impression_trackers.create({"name": "After", **base})
    assert after.id > max(ids)
    # without keep_ids an id is set by the server, as on a single create
    with pytest.raises(BatchRefused) as refused:
        service.impression_trackers.create_many([{"id": 5, "name": "x", **base}])
    assert [(r.item, r.field) for r in refused.value.refusals] == [(0, "id")]


def test_publishers_in_bulk_come_with_their_base_rules(service: CatalogueService) -> None:
    created = service.publishers.create_many(
        [
            {
                "id": 77,
                "name": "P1",
                "base_rule": {"id": 700, "pricing_type": "cpm", "cost_cpm_micros": 1_500_000},
            },
            {"name": "P2"},
        ],
        keep_ids=True,
    )
    assert created[0].id == 77
    rules = service.payment_rules.list(is_base=True).items
    by_publisher = {rule.publisher_id: rule for rule in rules}
    assert by_publisher[77].id == 700 and by_publisher[77].cost_cpm_micros == 1_500_000
    assert by_publisher[created[1].id].name == "Base rule"
    with pytest.raises(BatchRefused) as refused:
        service.publishers.create_many([{"name": "P3", "base_rule": {"revshare_ppm": 2_000_000}}])
    assert [(r.item, r.field) for r in refused.value.refusals] == [(0, "base_rule.revshare")]
    assert service.publishers.list(q="P3").total == 0


def test_a_very_large_batch_logs_no_changes_so_collectors_reload(
    service: CatalogueService, engine: Engine
) -> None:
    c = chain(service)
    base = {"line_item_id": c["line_item"], "publisher_id": c["publisher"]}
    before = version(engine)
    service.impression_trackers.create_many(
        [{"name": f"I{n}", **base} for n in range(MAX_RECORDED_CHANGES + 1)]
    )
    assert version(engine) == before + 1
    with engine.connect() as conn:
        logged = conn.execute(
            select(func.count())
            .select_from(t.catalogue_changes)
            .where(t.catalogue_changes.c.version == before + 1)
        ).scalar_one()
    assert logged == 0
