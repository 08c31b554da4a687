"""The catalogue service on a real database: every rule of the catalogue, on SQLite and on
PostgreSQL (each test runs once per backend).

The database is migrated once per module and backend, and the catalogue tables are emptied
before each test, which keeps the PostgreSQL runs fast while every test starts from scratch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, text

from adtrack.adapters.sql import tables
from adtrack.adapters.sql.db import make_engine, upgrade
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.domain.errors import Conflict, DomainError, InUse, NotFound, ValidationError
from adtrack.domain.model import (
    Advertiser,
    FilterAction,
    LineItem,
    PaymentRule,
    Placement,
    PricingType,
    Publisher,
    RedirectPolicy,
    RevenueType,
    State,
    Tracker,
    TrackerType,
)
from adtrack.services.catalogue import CatalogueService
from tests.support.postgres import temporary_database

# Children first, so foreign keys never block the clean-up.
CATALOGUE_TABLES = (
    tables.trackers,
    tables.payment_rule_filters,
    tables.payment_rules,
    tables.placements,
    tables.line_items,
    tables.publishers,
    tables.advertisers,
    tables.catalogue_version,
    tables.catalogue_changes,
)


class SteppingClock:
    """A clock that moves one second forward on every reading (so timestamps are distinct)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def catalogue_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("catalogue") / "adtrack.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    with temporary_database() as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def empty_catalogue(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in CATALOGUE_TABLES)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in CATALOGUE_TABLES:
                conn.execute(delete(table))


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def service(catalogue_engine: Engine, clock: SteppingClock) -> Iterator[CatalogueService]:
    empty_catalogue(catalogue_engine)
    yield CatalogueService(lambda: SqlUnitOfWork(catalogue_engine), clock=clock)


@dataclass
class World:
    """Two advertisers with a line item each, two publishers with a placement and a conditional
    payment rule each."""

    acme: Advertiser
    acme_li: LineItem
    globex: Advertiser
    globex_li: LineItem
    daily: Publisher
    daily_placement: Placement
    daily_rule: PaymentRule
    weekly: Publisher
    weekly_placement: Placement
    weekly_rule: PaymentRule


@pytest.fixture
def world(service: CatalogueService) -> World:
    acme = service.advertisers.create({"name": "Acme"})
    globex = service.advertisers.create({"name": "Globex"})
    daily = service.publishers.create({"name": "Daily News"})
    weekly = service.publishers.create({"name": "Weekly"})
    return World(
        acme=acme,
        acme_li=service.line_items.create(
            {
                "name": "Acme spring",
                "advertiser_id": acme.id,
                "revenue_type": "cpm",
                "revenue_value_micros": 2_500_000,
            }
        ),
        globex=globex,
        globex_li=service.line_items.create({"name": "Globex launch", "advertiser_id": globex.id}),
        daily=daily,
        daily_placement=service.placements.create({"name": "Top", "publisher_id": daily.id}),
        daily_rule=service.payment_rules.create(
            {
                "name": "Daily CPM",
                "publisher_id": daily.id,
                "pricing_type": "cpm",
                "cost_cpm_micros": 1_000_000,
            }
        ),
        weekly=weekly,
        weekly_placement=service.placements.create({"name": "Side", "publisher_id": weekly.id}),
        weekly_rule=service.payment_rules.create(
            {"name": "Weekly share", "publisher_id": weekly.id, "revshare_ppm": 400_000}
        ),
    )


def tracker_data(world: World, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Spring banner",
        "tracker_type": "impression",
        "line_item_id": world.acme_li.id,
        "publisher_id": world.daily.id,
    }
    data.update(overrides)
    return data


def refused(exc_type: type[DomainError], field: str) -> Any:
    """``pytest.raises`` that also checks the error names ``field``."""

    class _Check:
        def __enter__(self) -> pytest.ExceptionInfo[DomainError]:
            self._ctx = pytest.raises(exc_type)
            self.info = self._ctx.__enter__()
            return self.info

        def __exit__(self, *exc: Any) -> bool:
            handled = self._ctx.__exit__(*exc)
            assert self.info.value.field == field, self.info.value
            return bool(handled)

    return _Check()


def version_of(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(select(tables.catalogue_version.c.version)).scalar()
    return int(value or 0)


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


def test_create_and_get_every_kind(service: CatalogueService, world: World) -> None:
    assert service.advertisers.get(world.acme.id) == world.acme
    assert service.line_items.get(world.acme_li.id) == world.acme_li
    assert world.acme_li.revenue_type is RevenueType.CPM
    assert world.acme_li.revenue_value_micros == 2_500_000
    assert service.publishers.get(world.daily.id) == world.daily
    assert service.placements.get(world.daily_placement.id) == world.daily_placement
    rule = service.payment_rules.get(world.daily_rule.id)
    assert rule == world.daily_rule
    assert (rule.pricing_type, rule.cost_cpm_micros, rule.is_base) == (
        PricingType.CPM,
        1_000_000,
        False,
    )

    tracker = service.trackers.create(
        tracker_data(
            world,
            tracker_type="click",
            code="SPRING-1",
            placement_id=world.daily_placement.id,
            payment_rule_id=world.daily_rule.id,
            landing_page_url="https://acme.example/spring?x=1",
        )
    )
    assert tracker.id > 0
    assert tracker.tracker_type is TrackerType.CLICK
    assert tracker.advertiser_id == world.acme.id  # taken from the line item
    assert service.trackers.get(tracker.id) == tracker
    assert service.trackers.get(tracker.id, "click") == tracker


def test_names_and_codes_are_trimmed(service: CatalogueService) -> None:
    advertiser = service.advertisers.create({"name": "  Acme  ", "code": " AC-1 "})
    assert (advertiser.name, advertiser.code) == ("Acme", "AC-1")
    assert service.advertisers.create({"name": "B", "code": "   "}).code is None


def test_timestamps_are_aware_utc_and_kept(service: CatalogueService, clock: SteppingClock) -> None:
    advertiser = service.advertisers.create({"name": "Acme"})
    assert advertiser.created_at == advertiser.last_modified == clock.now
    assert advertiser.created_at is not None and advertiser.created_at.tzinfo is not None
    stored = service.advertisers.get(advertiser.id)
    assert stored.created_at == clock.now and stored.created_at.utcoffset() == timedelta(0)

    updated = service.advertisers.update(advertiser.id, {"name": "Acme Corp"})
    assert updated.created_at == advertiser.created_at
    assert updated.last_modified == clock.now
    assert updated.last_modified is not None and advertiser.last_modified is not None
    assert updated.last_modified > advertiser.last_modified
    assert service.advertisers.get(advertiser.id) == updated


def test_dates_are_stored_as_utc(service: CatalogueService, world: World) -> None:
    paris = timezone(timedelta(hours=2))
    item = service.line_items.create(
        {
            "name": "Dated",
            "advertiser_id": world.acme.id,
            "start_date": datetime(2024, 6, 1, 0, 0, tzinfo=paris),
            "end_date": "2024-07-01T00:00:00Z",
        }
    )
    stored = service.line_items.get(item.id)
    assert stored.start_date == datetime(2024, 5, 31, 22, 0, tzinfo=UTC)
    assert stored.end_date == datetime(2024, 7, 1, tzinfo=UTC)
    assert stored.start_date is not None and stored.start_date.tzinfo is UTC


def test_partial_update_keeps_other_fields(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(
        tracker_data(world, code="KEEP", placement_id=world.daily_placement.id)
    )
    updated = service.trackers.update(tracker.id, {"state": "inactive"})
    assert updated.state is State.INACTIVE
    assert (updated.code, updated.placement_id, updated.name) == (
        "KEEP",
        world.daily_placement.id,
        "Spring banner",
    )
    cleared = service.trackers.update(tracker.id, {"placement_id": None, "code": None})
    assert (cleared.placement_id, cleared.code) == (None, None)


def test_every_write_bumps_the_catalogue_version(
    service: CatalogueService, catalogue_engine: Engine
) -> None:
    assert service.catalogue_version() == 0
    advertiser = service.advertisers.create({"name": "Acme"})
    assert version_of(catalogue_engine) == 1
    service.advertisers.update(advertiser.id, {"name": "Acme 2"})
    assert version_of(catalogue_engine) == 2
    # nothing changes: nothing is written
    service.advertisers.update(advertiser.id, {"name": "Acme 2"})
    service.advertisers.update(advertiser.id, {})
    assert version_of(catalogue_engine) == 2
    # a refused write leaves the version alone
    with pytest.raises(ValidationError):
        service.advertisers.update(advertiser.id, {"name": ""})
    assert version_of(catalogue_engine) == 2
    service.advertisers.delete(advertiser.id)
    assert service.catalogue_version() == 3
    with catalogue_engine.connect() as conn:
        changed_at = conn.execute(select(tables.catalogue_version.c.changed_at)).scalar_one()
    assert changed_at is not None


# ---------------------------------------------------------------------------------------------
# Trackers: every refusal of the issue
# ---------------------------------------------------------------------------------------------


def test_placement_of_another_publisher_is_refused(service: CatalogueService, world: World) -> None:
    with refused(ValidationError, "placement_id") as info:
        service.trackers.create(tracker_data(world, placement_id=world.weekly_placement.id))
    assert info.value.message == (
        f"placement {world.weekly_placement.id} belongs to publisher {world.weekly.id}, "
        f"not to publisher {world.daily.id}"
    )
    assert info.value.status == 422


def test_payment_rule_of_another_publisher_is_refused(
    service: CatalogueService, world: World
) -> None:
    with refused(ValidationError, "payment_rule_id") as info:
        service.trackers.create(tracker_data(world, payment_rule_id=world.weekly_rule.id))
    assert f"belongs to publisher {world.weekly.id}" in info.value.message


def test_line_item_of_another_advertiser_is_refused(
    service: CatalogueService, world: World
) -> None:
    with refused(ValidationError, "line_item_id") as info:
        service.trackers.create(
            tracker_data(world, advertiser_id=world.globex.id, line_item_id=world.acme_li.id)
        )
    assert info.value.message == (
        f"line item {world.acme_li.id} belongs to advertiser {world.acme.id}, "
        f"not to advertiser {world.globex.id}"
    )


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("line_item_id", "line item"),
        ("publisher_id", "publisher"),
        ("placement_id", "placement"),
        ("payment_rule_id", "payment rule"),
        ("advertiser_id", "advertiser"),
    ],
)
def test_unknown_reference_is_refused(
    service: CatalogueService, world: World, field: str, label: str
) -> None:
    with refused(ValidationError, field) as info:
        service.trackers.create(tracker_data(world, **{field: 999_999}))
    assert info.value.message == f"{label} 999999 does not exist"


def test_deleted_references_are_refused(service: CatalogueService, world: World) -> None:
    service.placements.delete(world.daily_placement.id)
    with refused(ValidationError, "placement_id"):
        service.trackers.create(tracker_data(world, placement_id=world.daily_placement.id))
    service.payment_rules.delete(world.daily_rule.id)
    with refused(ValidationError, "payment_rule_id"):
        service.trackers.create(tracker_data(world, payment_rule_id=world.daily_rule.id))
    service.line_items.delete(world.globex_li.id)
    with refused(ValidationError, "line_item_id"):
        service.trackers.create(tracker_data(world, line_item_id=world.globex_li.id))
    service.placements.delete(world.weekly_placement.id)
    service.payment_rules.delete(world.weekly_rule.id)
    service.publishers.delete(world.weekly.id)
    with refused(ValidationError, "publisher_id"):
        service.trackers.create(tracker_data(world, publisher_id=world.weekly.id))
    service.advertisers.delete(world.globex.id)
    with refused(ValidationError, "advertiser_id"):
        service.line_items.create({"name": "Late", "advertiser_id": world.globex.id})


def test_required_tracker_fields(service: CatalogueService, world: World) -> None:
    for field in ("name", "tracker_type", "line_item_id", "publisher_id"):
        data = tracker_data(world)
        del data[field]
        with refused(ValidationError, field) as info:
            service.trackers.create(data)
        assert info.value.message == "is required"
    with refused(ValidationError, "publisher_id"):
        service.trackers.create(tracker_data(world, publisher_id=None))


def test_duplicate_code_is_refused_per_tracker_type(
    service: CatalogueService, world: World
) -> None:
    first = service.trackers.create(tracker_data(world, code="BANNER"))
    with refused(Conflict, "code") as info:
        service.trackers.create(tracker_data(world, name="Other", code="BANNER"))
    assert info.value.status == 409
    assert f"impression tracker {first.id}" in info.value.message
    # the same code on the other type is fine, and so is a code differing in case
    service.trackers.create(tracker_data(world, tracker_type="click", code="BANNER"))
    service.trackers.create(tracker_data(world, code="banner"))
    # updating a tracker keeps its own code; taking another's is refused
    second = service.trackers.create(tracker_data(world, code="SECOND"))
    assert service.trackers.update(second.id, {"code": "SECOND", "name": "x"}).code == "SECOND"
    with refused(Conflict, "code"):
        service.trackers.update(second.id, {"code": "BANNER"})
    # a deleted tracker's code is free again
    service.trackers.delete(first.id)
    assert service.trackers.update(second.id, {"code": "BANNER"}).code == "BANNER"


def test_concurrent_creates_cannot_share_a_code(service: CatalogueService, world: World) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def create(n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(service.trackers.create(tracker_data(world, name=f"t{n}", code="RACE")))
        except DomainError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [o for o in outcomes if isinstance(o, Tracker)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert (len(created), len(conflicts)) == (1, 3), outcomes
    assert service.trackers.list(q="RACE").total == 1


@pytest.mark.parametrize("name", ["", "   ", "\t"])
def test_empty_names_are_refused_for_every_kind(
    service: CatalogueService, world: World, name: str
) -> None:
    attempts: list[Callable[[], object]] = [
        lambda: service.advertisers.create({"name": name}),
        lambda: service.line_items.create({"name": name, "advertiser_id": world.acme.id}),
        lambda: service.publishers.create({"name": name}),
        lambda: service.placements.create({"name": name, "publisher_id": world.daily.id}),
        lambda: service.payment_rules.create({"name": name, "publisher_id": world.daily.id}),
        lambda: service.trackers.create(tracker_data(world, name=name)),
        lambda: service.trackers.update(
            service.trackers.create(tracker_data(world)).id, {"name": name}
        ),
    ]
    for attempt in attempts:
        with refused(ValidationError, "name") as info:
            attempt()
        assert info.value.message == "must not be empty"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.example/x",
        "//example.com/no-scheme",
        "https://exa mple.com/",
        "https://example.com/\r\nSet-Cookie:x=1",
        "https:///no-host",
    ],
)
def test_bad_landing_pages_are_refused(service: CatalogueService, world: World, url: str) -> None:
    with refused(ValidationError, "landing_page_url"):
        service.trackers.create(tracker_data(world, tracker_type="click", landing_page_url=url))


def test_landing_page_only_on_click_trackers(service: CatalogueService, world: World) -> None:
    with refused(ValidationError, "landing_page_url") as info:
        service.trackers.create(tracker_data(world, landing_page_url="https://acme.example/"))
    assert "click trackers" in info.value.message
    click = service.trackers.create(
        tracker_data(world, tracker_type="click", landing_page_url="http://acme.example/")
    )
    assert click.landing_page_url == "http://acme.example/"


def test_tracker_type_cannot_change(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(tracker_data(world))
    with refused(ValidationError, "tracker_type"):
        service.trackers.update(tracker.id, {"tracker_type": "click"})
    assert service.trackers.update(tracker.id, {"tracker_type": "impression"}) == tracker


def test_tracker_of_the_other_type_is_not_found(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(tracker_data(world))
    with refused(NotFound, "id") as info:
        service.trackers.get(tracker.id, TrackerType.CLICK)
    assert info.value.message == f"click tracker {tracker.id} does not exist"
    with pytest.raises(NotFound):
        service.trackers.update(tracker.id, {"name": "x"}, tracker_type="click")
    with pytest.raises(NotFound):
        service.trackers.delete(tracker.id, tracker_type="click")
    assert service.trackers.get(tracker.id, "impression").name == "Spring banner"


def test_advertiser_follows_the_line_item(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(tracker_data(world))
    assert tracker.advertiser_id == world.acme.id
    moved = service.trackers.update(tracker.id, {"line_item_id": world.globex_li.id})
    assert (moved.advertiser_id, moved.line_item_id) == (world.globex.id, world.globex_li.id)
    # naming an advertiser that does not match is refused, on update as on create
    with refused(ValidationError, "line_item_id"):
        service.trackers.update(tracker.id, {"advertiser_id": world.acme.id})


def test_changing_publisher_rechecks_placement(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(tracker_data(world, placement_id=world.daily_placement.id))
    with refused(ValidationError, "placement_id"):
        service.trackers.update(tracker.id, {"publisher_id": world.weekly.id})
    moved = service.trackers.update(
        tracker.id, {"publisher_id": world.weekly.id, "placement_id": world.weekly_placement.id}
    )
    assert moved.publisher_id == world.weekly.id


def test_unknown_and_read_only_keys_are_refused(service: CatalogueService, world: World) -> None:
    with refused(ValidationError, "colour") as info:
        service.advertisers.create({"name": "A", "colour": "red"})
    assert info.value.message == "is not a known advertiser field"
    with refused(ValidationError, "created_at"):
        service.advertisers.update(world.acme.id, {"created_at": datetime.now(UTC)})
    with refused(ValidationError, "landing_page"):
        service.trackers.create(tracker_data(world, landing_page="https://x.example/"))


def test_missing_objects_are_not_found(service: CatalogueService) -> None:
    for call in (
        lambda: service.advertisers.get(42),
        lambda: service.line_items.get(42),
        lambda: service.publishers.get(42),
        lambda: service.placements.get(42),
        lambda: service.payment_rules.get(42),
        lambda: service.trackers.get(42),
        lambda: service.placements.update(42, {"name": "x"}),
        lambda: service.publishers.delete(42),
        lambda: service.advertisers.get(2**40),
    ):
        with refused(NotFound, "id") as info:
            call()
        assert info.value.status == 404
        assert "does not exist" in info.value.message


# ---------------------------------------------------------------------------------------------
# Line items and payment rules
# ---------------------------------------------------------------------------------------------


def test_line_item_revenue_rules(service: CatalogueService, world: World) -> None:
    base = {"name": "LI", "advertiser_id": world.acme.id}
    with refused(ValidationError, "revenue_value"):
        service.line_items.create({**base, "revenue_type": "none", "revenue_value_micros": 1})
    with refused(ValidationError, "revenue_value"):
        service.line_items.create({**base, "revenue_type": "cpc"})
    with refused(ValidationError, "revenue_value"):
        service.line_items.create({**base, "revenue_type": "cpm", "revenue_value_micros": -1})
    with refused(ValidationError, "revenue_type"):
        service.line_items.create({**base, "revenue_type": "cpa", "revenue_value_micros": 1})
    item = service.line_items.create({**base, "revenue_type": "cpc", "revenue_value_micros": 0})
    # switching back to none drops the value; switching to cpm needs one
    assert service.line_items.update(item.id, {"revenue_type": "none"}).revenue_value_micros == 0
    with refused(ValidationError, "revenue_value"):
        service.line_items.update(item.id, {"revenue_type": "cpm"})


def test_line_item_dates(service: CatalogueService, world: World) -> None:
    start = datetime(2024, 6, 1, tzinfo=UTC)
    base = {"name": "LI", "advertiser_id": world.acme.id}
    with refused(ValidationError, "end_date"):
        service.line_items.create({**base, "start_date": start, "end_date": start})
    with refused(ValidationError, "start_date") as info:
        service.line_items.create({**base, "start_date": datetime(2024, 6, 1)})
    assert "time zone" in info.value.message
    item = service.line_items.create({**base, "start_date": start})
    with refused(ValidationError, "end_date"):
        service.line_items.update(item.id, {"end_date": start - timedelta(days=1)})


def test_line_item_in_use_cannot_change_advertiser(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(tracker_data(world))
    with refused(InUse, "advertiser_id") as info:
        service.line_items.update(world.acme_li.id, {"advertiser_id": world.globex.id})
    assert info.value.blockers == [
        {"kind": "tracker", "id": tracker.id, "name": tracker.name, "tracker_type": "impression"}
    ]
    moved = service.line_items.update(world.globex_li.id, {"advertiser_id": world.acme.id})
    assert moved.advertiser_id == world.acme.id


def test_payment_rule_amount_rules(service: CatalogueService, world: World) -> None:
    base = {"name": "R", "publisher_id": world.daily.id}
    with refused(ValidationError, "revshare"):
        service.payment_rules.create({**base, "revshare_ppm": 1_000_001})
    with refused(ValidationError, "cost_cpm"):
        service.payment_rules.create({**base, "pricing_type": "cpm"})
    with refused(ValidationError, "cost_cpm"):
        service.payment_rules.create(
            {**base, "pricing_type": "cpm", "cost_cpm_micros": 1_000_000_000_000}
        )
    with refused(ValidationError, "cost_cpc"):
        service.payment_rules.create({**base, "pricing_type": "revshare", "cost_cpc_micros": 5})
    with refused(ValidationError, "pricing_type"):
        service.payment_rules.create({**base, "pricing_type": "dynamic"})
    with refused(ValidationError, "priority"):
        service.payment_rules.create({**base, "priority": 11})
    with refused(ValidationError, "priority"):
        service.payment_rules.create({**base, "priority": 0})
    rule = service.payment_rules.create({**base, "revshare_ppm": 1_000_000, "priority": 10})
    assert (rule.pricing_type, rule.revshare_ppm, rule.priority) == (
        PricingType.REVSHARE,
        10**6,
        10,
    )
    # switching pricing type resets the old amount
    cpc = service.payment_rules.update(rule.id, {"pricing_type": "cpc", "cost_cpc_micros": 150_000})
    assert (cpc.revshare_ppm, cpc.cost_cpc_micros) == (0, 150_000)
    assert service.payment_rules.create(base).priority == 5


def test_payment_rule_filters(service: CatalogueService, world: World) -> None:
    base = {"name": "Filtered", "publisher_id": world.daily.id, "revshare_ppm": 500_000}
    with refused(ValidationError, "advertiser_filter"):
        service.payment_rules.create({**base, "advertiser_ids": [world.acme.id]})
    with refused(ValidationError, "line_item_ids"):
        service.payment_rules.create({**base, "line_item_filter": "exclude"})
    with refused(ValidationError, "advertiser_ids") as info:
        service.payment_rules.create(
            {**base, "advertiser_filter": "include", "advertiser_ids": [world.acme.id, 777]}
        )
    assert info.value.message == "advertiser 777 does not exist"
    with refused(ValidationError, "advertiser_filter"):
        service.payment_rules.create(
            {**base, "advertiser_filter": "maybe", "advertiser_ids": [world.acme.id]}
        )
    rule = service.payment_rules.create(
        {
            **base,
            "advertiser_filter": "include",
            "advertiser_ids": [world.acme.id, world.globex.id],
            "line_item_filter": FilterAction.EXCLUDE,
            "line_item_ids": [world.globex_li.id],
        }
    )
    stored = service.payment_rules.get(rule.id)
    assert stored.advertiser_filter is FilterAction.INCLUDE
    assert stored.advertiser_ids == {world.acme.id, world.globex.id}
    assert stored.line_item_ids == {world.globex_li.id}
    # clearing the action clears its ids
    cleared = service.payment_rules.update(rule.id, {"line_item_filter": None})
    assert (cleared.line_item_filter, cleared.line_item_ids) == (None, frozenset())
    assert service.payment_rules.get(rule.id).line_item_ids == frozenset()
    # a filtered advertiser cannot be deleted while the rule lists it
    with refused(InUse, "id") as in_use:
        service.advertisers.delete(world.globex.id)
    assert {"kind": "payment_rule", "id": rule.id, "name": "Filtered"} in in_use.value.blockers


def test_base_rule_comes_with_the_publisher(service: CatalogueService) -> None:
    publisher = service.publishers.create({"name": "Daily"})
    page = service.payment_rules.list(publisher_id=publisher.id)
    assert page.total == 1
    base = page.items[0]
    assert (base.is_base, base.pricing_type, base.revshare_ppm, base.state) == (
        True,
        PricingType.REVSHARE,
        0,
        State.ACTIVE,
    )
    other = service.publishers.create(
        {"name": "Weekly", "base_rule": {"name": "House share", "revshare_ppm": 350_000}}
    )
    (other_base,) = service.payment_rules.list(publisher_id=other.id, is_base=True).items
    assert (other_base.name, other_base.revshare_ppm) == ("House share", 350_000)


def test_base_rule_refusals(service: CatalogueService) -> None:
    publisher = service.publishers.create({"name": "Daily"})
    (base,) = service.payment_rules.list(publisher_id=publisher.id).items

    with refused(Conflict, "id") as info:
        service.payment_rules.delete(base.id)
    assert "base rule" in info.value.message
    with refused(ValidationError, "state"):
        service.payment_rules.update(base.id, {"state": "inactive"})
    with refused(Conflict, "is_base"):
        service.payment_rules.update(base.id, {"is_base": False})
    with refused(ValidationError, "priority"):
        service.payment_rules.update(base.id, {"priority": 9})
    with refused(ValidationError, "start_date"):
        service.payment_rules.update(base.id, {"start_date": datetime(2024, 1, 1, tzinfo=UTC)})
    with refused(ValidationError, "advertiser_filter"):
        advertiser = service.advertisers.create({"name": "A"})
        service.payment_rules.update(
            base.id, {"advertiser_filter": "include", "advertiser_ids": [advertiser.id]}
        )
    with refused(ValidationError, "publisher_id"):
        service.payment_rules.update(
            base.id, {"publisher_id": service.publishers.create({"name": "Other"}).id}
        )
    with refused(Conflict, "is_base"):
        service.payment_rules.create({"name": "2nd", "publisher_id": publisher.id, "is_base": True})
    conditional = service.payment_rules.create({"name": "c", "publisher_id": publisher.id})
    with refused(Conflict, "is_base"):
        service.payment_rules.update(conditional.id, {"is_base": True})
    with refused(ValidationError, "base_rule.priority"):
        service.publishers.create({"name": "P", "base_rule": {"priority": 3}})
    with refused(ValidationError, "base_rule.revshare"):
        service.publishers.create({"name": "P", "base_rule": {"revshare_ppm": -1}})
    with refused(ValidationError, "base_rule.publisher_id"):
        service.publishers.create({"name": "P", "base_rule": {"publisher_id": 1}})
    assert service.publishers.list().total == 2  # Daily, Other: the refused ones rolled back

    # editable: name, pricing, amount
    edited = service.payment_rules.update(
        base.id, {"name": "Base 50%", "revshare_ppm": 500_000, "priority": 5}
    )
    assert (edited.name, edited.revshare_ppm, edited.is_base) == ("Base 50%", 500_000, True)


# ---------------------------------------------------------------------------------------------
# Deleting
# ---------------------------------------------------------------------------------------------


def test_delete_in_use_lists_the_trackers(service: CatalogueService, world: World) -> None:
    imp = service.trackers.create(tracker_data(world, placement_id=world.daily_placement.id))
    clk = service.trackers.create(
        tracker_data(
            world, name="Click", tracker_type="click", placement_id=world.daily_placement.id
        )
    )
    with refused(InUse, "id") as info:
        service.placements.delete(world.daily_placement.id)
    error = info.value
    assert error.status == 409
    assert error.blockers == [
        {"kind": "tracker", "id": imp.id, "name": imp.name, "tracker_type": "impression"},
        {"kind": "tracker", "id": clk.id, "name": "Click", "tracker_type": "click"},
    ]
    assert error.message.startswith(
        f"placement {world.daily_placement.id} cannot be deleted: 2 trackers still use it"
    )
    for delete_object, object_id in (
        (service.line_items.delete, world.acme_li.id),
        (service.advertisers.delete, world.acme.id),
        (service.publishers.delete, world.daily.id),
    ):
        with pytest.raises(InUse):
            delete_object(object_id)
    # a deleted tracker no longer blocks
    service.trackers.delete(imp.id)
    service.trackers.update(clk.id, {"placement_id": None})
    service.placements.delete(world.daily_placement.id)
    with pytest.raises(NotFound):
        service.placements.get(world.daily_placement.id)
    with pytest.raises(NotFound):
        service.trackers.get(imp.id)


def test_deactivated_trackers_still_block(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(tracker_data(world, payment_rule_id=world.daily_rule.id))
    service.trackers.update(tracker.id, {"state": "inactive"})
    with refused(InUse, "id"):
        service.payment_rules.delete(world.daily_rule.id)


def test_in_use_lists_at_most_100_blockers(service: CatalogueService, world: World) -> None:
    for n in range(101):
        service.trackers.create(tracker_data(world, name=f"t{n:03d}"))
    with refused(InUse, "id") as info:
        service.line_items.delete(world.acme_li.id)
    assert len(info.value.blockers) == 100
    assert "101 trackers" in info.value.message
    assert info.value.blockers[0]["name"] == "t000"


def test_advertiser_with_line_items_cannot_be_deleted(
    service: CatalogueService, world: World
) -> None:
    with refused(InUse, "id") as info:
        service.advertisers.delete(world.globex.id)
    assert info.value.blockers == [
        {"kind": "line_item", "id": world.globex_li.id, "name": "Globex launch"}
    ]
    assert "1 line item still uses it" in info.value.message
    service.line_items.delete(world.globex_li.id)
    service.advertisers.delete(world.globex.id)
    assert service.advertisers.list().total == 1


def test_publisher_delete_takes_its_base_rule(service: CatalogueService, world: World) -> None:
    with refused(InUse, "id") as info:
        service.publishers.delete(world.weekly.id)
    kinds = sorted(str(b["kind"]) for b in info.value.blockers)
    assert kinds == ["payment_rule", "placement"]
    (base,) = service.payment_rules.list(publisher_id=world.weekly.id, is_base=True).items
    service.placements.delete(world.weekly_placement.id)
    service.payment_rules.delete(world.weekly_rule.id)
    service.publishers.delete(world.weekly.id)
    with pytest.raises(NotFound):
        service.payment_rules.get(base.id)
    with pytest.raises(NotFound):
        service.publishers.get(world.weekly.id)


def test_deleting_a_tracker_always_works(service: CatalogueService, world: World) -> None:
    tracker = service.trackers.create(
        tracker_data(world, placement_id=world.daily_placement.id, code="GONE")
    )
    service.trackers.delete(tracker.id)
    with pytest.raises(NotFound):
        service.trackers.delete(tracker.id)
    assert service.trackers.list().total == 0


def test_placement_in_use_cannot_move(service: CatalogueService, world: World) -> None:
    service.trackers.create(tracker_data(world, placement_id=world.daily_placement.id))
    with refused(InUse, "publisher_id"):
        service.placements.update(world.daily_placement.id, {"publisher_id": world.weekly.id})
    moved = service.placements.update(world.weekly_placement.id, {"publisher_id": world.daily.id})
    assert moved.publisher_id == world.daily.id


def test_payment_rule_in_use_cannot_move(service: CatalogueService, world: World) -> None:
    service.trackers.create(tracker_data(world, payment_rule_id=world.daily_rule.id))
    with refused(InUse, "publisher_id"):
        service.payment_rules.update(world.daily_rule.id, {"publisher_id": world.weekly.id})


# ---------------------------------------------------------------------------------------------
# Lists
# ---------------------------------------------------------------------------------------------


def test_list_search_filters_and_pages(service: CatalogueService, world: World) -> None:
    a = service.trackers.create(tracker_data(world, name="Summer Banner", code="SUM-1"))
    b = service.trackers.create(tracker_data(world, name="winter banner", tracker_type="click"))
    c = service.trackers.create(
        tracker_data(
            world,
            name="Other 50%_off",
            line_item_id=world.globex_li.id,
            publisher_id=world.weekly.id,
        )
    )
    assert [t.id for t in service.trackers.list(q="BANNER").items] == [a.id, b.id]
    assert [t.id for t in service.trackers.list(q="sum-").items] == [a.id]  # by code
    assert [t.id for t in service.trackers.list(q=str(c.id)).items] == [c.id]  # by id
    assert [t.id for t in service.trackers.list(q="50%_").items] == [c.id]  # literal % and _
    assert service.trackers.list(q="0%x").total == 0
    assert [t.id for t in service.trackers.list(tracker_type="click").items] == [b.id]
    assert [t.id for t in service.trackers.list(advertiser_id=world.globex.id).items] == [c.id]
    assert [t.id for t in service.trackers.list(publisher_id=world.daily.id).items] == [a.id, b.id]

    service.trackers.update(a.id, {"state": "inactive"})
    assert [t.id for t in service.trackers.list(state="inactive").items] == [a.id]

    page = service.trackers.list(offset=1, limit=1)
    assert (page.total, page.offset, page.limit, [t.id for t in page.items]) == (3, 1, 1, [b.id])

    service.trackers.delete(b.id)
    assert service.trackers.list().total == 2
    assert [li.id for li in service.line_items.list(advertiser_id=world.acme.id).items] == [
        world.acme_li.id
    ]
    assert [p.id for p in service.placements.list(publisher_id=world.weekly.id).items] == [
        world.weekly_placement.id
    ]
    assert service.advertisers.list(q="glob").items == [world.globex]


def test_list_refuses_bad_parameters(service: CatalogueService) -> None:
    with refused(ValidationError, "limit"):
        service.advertisers.list(limit=0)
    with refused(ValidationError, "limit"):
        service.advertisers.list(limit=100_000)
    with refused(ValidationError, "offset"):
        service.advertisers.list(offset=-1)
    with refused(ValidationError, "state"):
        service.advertisers.list(state="paused")
    with refused(ValidationError, "publisher_id"):
        service.advertisers.list(publisher_id=1)
    with refused(ValidationError, "tracker_type"):
        service.trackers.list(tracker_type="video")


def test_advertiser_landing_domains_and_redirect_policy_round_trip(
    service: CatalogueService, catalogue_engine: Engine
) -> None:
    made = service.advertisers.create(
        {"name": "Acme", "landing_domains": ["Shop.Example", "*.shop.example"]}
    )
    assert made.landing_domains == ("shop.example", "*.shop.example")
    assert made.redirect_policy is None
    version = _catalogue_version(catalogue_engine)
    changed = service.advertisers.update(
        made.id, {"redirect_policy": "allow-list", "landing_domains": ["bücher.example"]}
    )
    assert changed.landing_domains == ("xn--bcher-kva.example",)
    assert changed.redirect_policy is RedirectPolicy.ALLOW_LIST
    assert service.advertisers.get(made.id) == changed
    # the collectors notice: the write bumped the catalogue version
    assert _catalogue_version(catalogue_engine) > version
    with catalogue_engine.connect() as conn:
        row = conn.execute(
            select(tables.advertisers.c.landing_domains, tables.advertisers.c.redirect_policy)
        ).one()
    assert (list(row.landing_domains), row.redirect_policy) == (
        ["xn--bcher-kva.example"],
        "allow-list",
    )
    cleared = service.advertisers.update(made.id, {"landing_domains": [], "redirect_policy": None})
    assert (cleared.landing_domains, cleared.redirect_policy) == ((), None)
    with pytest.raises(ValidationError) as refused:
        service.advertisers.update(made.id, {"landing_domains": ["ok.example", "http://x.example"]})
    assert refused.value.field == "landing_domains[1]"
    with pytest.raises(ValidationError) as refused:
        service.advertisers.update(made.id, {"redirect_policy": "sometimes"})
    assert refused.value.field == "redirect_policy"


def _catalogue_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(tables.catalogue_version.c.version)).scalar_one())
