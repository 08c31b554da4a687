"""Catalogue changes reach the collector's tracker cache incrementally (SQLite and PostgreSQL):
every catalogue write records the rows it changed, collectors rebuild only the trackers that
depend on them (and drop the tag plans made from the old copies), a collector that missed
trimmed changes reloads everything, and after random edits the incremental cache equals a
fresh full load."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.collector.tracker_tables import CachedTracker
from adtrack.services.catalogue import CatalogueService
from tests.support.collector import ThreadCollector, request, settings_for, start_thread_collector
from tests.support.prometheus import metric_total

IMPRESSION, CLICK = 9, 10


@dataclass
class World:
    service: CatalogueService
    advertiser: int
    other_advertiser: int
    line_item: int
    other_line_item: int
    publisher: int
    placement: int
    rule: int
    imp: int
    click: int


def make_world(service: CatalogueService) -> World:
    adv = service.advertisers.create({"name": "Acme"}).id
    other = service.advertisers.create({"name": "Globex"}).id
    li = service.line_items.create(
        {
            "name": "Spring",
            "advertiser_id": adv,
            "revenue_type": "cpm",
            "revenue_value_micros": 10**6,
        }
    ).id
    other_li = service.line_items.create({"name": "Launch", "advertiser_id": other}).id
    pub = service.publishers.create({"name": "Daily"}).id
    placement = service.placements.create({"name": "Top", "publisher_id": pub}).id
    rule = service.payment_rules.create(
        {"name": "CPM", "publisher_id": pub, "pricing_type": "cpm", "cost_cpm_micros": 1_000_000}
    ).id
    imp = service.trackers.create(
        {"name": "Banner", "tracker_type": "impression", "line_item_id": li, "publisher_id": pub}
    ).id
    click = service.trackers.create(
        {
            "name": "Click",
            "tracker_type": "click",
            "line_item_id": li,
            "publisher_id": pub,
            "landing_page_url": "https://shop.example/",
        }
    ).id
    return World(service, adv, other, li, other_li, pub, placement, rule, imp, click)


@pytest.fixture
def service(engine: Engine) -> CatalogueService:
    return CatalogueService(partial(SqlUnitOfWork, engine))


@pytest.fixture
def start(tmp_path: Path, engine: Engine, migrated_db_url: str) -> Iterator[Callable[[], Any]]:
    started: list[ThreadCollector] = []

    def factory() -> ThreadCollector:
        collector = start_thread_collector(
            settings_for(tmp_path / str(len(started)), migrated_db_url), engine
        )
        started.append(collector)
        return collector

    try:
        yield factory
    finally:
        for collector in started:
            collector.stop()


def within_two_seconds(check: Callable[[], bool]) -> None:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > 2.0:
            pytest.fail("not applied within 2 s")
        time.sleep(0.05)


def price_now(tracker: CachedTracker) -> tuple[int, int]:
    priced, _, _ = tracker.plan.price_window(tracker.imp_type, int(time.time() * 1e6), None)
    return priced.media_cost_micros, priced.booked_revenue_micros


# ---- the change log -------------------------------------------------------------------------


def test_every_write_records_what_it_changed(engine: Engine, service: CatalogueService) -> None:
    w = make_world(service)
    with engine.connect() as conn:
        version = conn.execute(select(t.catalogue_version.c.version)).scalar_one()
        rows = conn.execute(select(t.catalogue_changes)).all()
    # every committed version has rows; a publisher comes with its base rule
    assert {r.version for r in rows} == set(range(1, version + 1))
    kinds = {(r.kind, r.entity_id) for r in rows}
    assert ("publishers", w.publisher) in kinds and ("trackers", w.click) in kinds
    base = [r for r in rows if r.kind == "payment_rules" and r.entity_id != w.rule]
    assert len(base) == 1 and base[0].version == min(
        r.version for r in rows if r.kind == "publishers"
    )
    # an update that changes nothing records (and bumps) nothing
    service.trackers.update(w.imp, {"name": "Banner"})
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.catalogue_changes)).scalar() == len(
            rows
        )


def test_the_change_log_is_trimmed_to_the_kept_versions(engine: Engine) -> None:
    service = CatalogueService(partial(SqlUnitOfWork, engine, changes_kept=3))
    w = make_world(service)
    for n in range(5):
        service.trackers.update(w.imp, {"name": f"Banner {n}"})
    with engine.connect() as conn:
        version, trimmed = conn.execute(
            select(t.catalogue_version.c.version, t.catalogue_version.c.trimmed_through)
        ).one()
        kept = {r.version for r in conn.execute(select(t.catalogue_changes))}
    assert trimmed == version - 3
    assert kept == {version - 2, version - 1, version}


# ---- a running collector --------------------------------------------------------------------


def test_each_kind_of_change_reaches_a_running_collector_incrementally(
    service: CatalogueService, start: Callable[[], ThreadCollector]
) -> None:
    w = make_world(service)
    collector = start()
    cache = collector.cache
    reloads = cache.reloads
    imp = cache.by_id(w.imp)
    assert imp is not None and price_now(imp) == (1_000, 1_000)

    # tracker: create, update (code), deactivate, delete
    new = service.trackers.create(
        {
            "name": "New",
            "tracker_type": "impression",
            "code": "NEW-1",
            "line_item_id": w.line_item,
            "publisher_id": w.publisher,
        }
    ).id
    within_two_seconds(lambda: cache.by_code(IMPRESSION, "NEW-1") is not None)
    service.trackers.update(new, {"code": "NEW-2"})
    within_two_seconds(lambda: cache.by_code(IMPRESSION, "NEW-2") is not None)
    assert cache.by_code(IMPRESSION, "NEW-1") is None
    service.trackers.update(new, {"state": "inactive"})
    within_two_seconds(lambda: not cache.by_id(new).active)  # type: ignore[union-attr]
    service.trackers.delete(new)
    within_two_seconds(lambda: cache.by_id(new) is None)
    assert cache.by_code(IMPRESSION, "NEW-2") is None

    # line item: price, then dates (ended yesterday: books nothing)
    service.line_items.update(w.line_item, {"revenue_value_micros": 5_000_000})
    within_two_seconds(lambda: price_now(cache.by_id(w.imp))[1] == 5_000)  # type: ignore[arg-type]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    service.line_items.update(
        w.line_item, {"start_date": yesterday - timedelta(days=2), "end_date": yesterday}
    )
    within_two_seconds(lambda: price_now(cache.by_id(w.imp))[1] == 0)  # type: ignore[arg-type]

    # payment rule (the publisher's): every tracker of the publisher is repriced
    service.payment_rules.update(w.rule, {"cost_cpm_micros": 7_000_000})
    within_two_seconds(lambda: price_now(cache.by_id(w.imp))[0] == 7_000)  # type: ignore[arg-type]

    # advertiser: redirect policy and landing domains
    service.advertisers.update(
        w.advertiser, {"redirect_policy": "allow-list", "landing_domains": ["shop.example"]}
    )

    def redirects_applied() -> bool:
        click = cache.by_id(w.click)
        assert click is not None
        return click.redirects.policy == "allow-list" and bool(click.redirects.domains)

    within_two_seconds(redirects_applied)
    # another advertiser's change leaves these trackers alone
    before = cache.by_id(w.click)
    service.advertisers.update(w.other_advertiser, {"redirect_policy": "open"})
    within_two_seconds(lambda: cache.version == service.catalogue_version())
    assert cache.by_id(w.click) is before and not before.retired  # type: ignore[union-attr]

    # none of it reloaded the catalogue, and /metrics says so
    assert cache.reloads == reloads
    assert cache.incremental_applies > 0
    text = request(collector.port, "/metrics").body.decode()
    assert metric_total(text, "adtrack_collector_catalogue_full_loads") == reloads
    applies = metric_total(text, "adtrack_collector_catalogue_incremental_applies")
    assert applies == cache.incremental_applies


def test_conversion_pixels_reach_a_running_collector_incrementally(
    service: CatalogueService, start: Callable[[], ThreadCollector]
) -> None:
    w = make_world(service)
    collector = start()
    cache = collector.cache
    reloads = cache.reloads
    pixel = service.conversion_pixels.create(
        {
            "advertiser_id": w.advertiser,
            "name": "Buy",
            "code": "buy",
            "post_click_revenue_micros": 2_000_000,
        }
    ).id
    within_two_seconds(lambda: cache.pixel_by_code("buy") is not None)
    cached = cache.pixel_by_id(pixel)
    assert cached is not None and cached.post_click_revenue_micros == 2_000_000
    assert cached.takes_post_click and cached.post_click_window_micros == 43_200 * 60_000_000
    service.conversion_pixels.update(
        pixel, {"code": "sale", "trigger_type": "view", "post_click_window_minutes": 5}
    )
    within_two_seconds(lambda: cache.pixel_by_code("sale") is not None)
    assert cache.pixel_by_code("buy") is None
    changed = cache.pixel_by_id(pixel)
    assert changed is not None and not changed.takes_post_click
    assert changed.post_click_window_micros == 5 * 60_000_000
    service.conversion_pixels.update(pixel, {"state": "inactive"})
    within_two_seconds(lambda: not cache.pixel_by_id(pixel).active)  # type: ignore[union-attr]
    service.conversion_pixels.delete(pixel)
    within_two_seconds(lambda: cache.pixel_by_id(pixel) is None)
    assert cache.pixel_by_code("sale") is None
    assert cache.reloads == reloads and cache.incremental_applies > 0


def test_a_repriced_tracker_is_served_its_new_price(
    service: CatalogueService, start: Callable[[], ThreadCollector]
) -> None:
    w = make_world(service)
    collector = start()
    hits = itertools.count()

    def last_cost() -> int:
        # an exported tag: the same query but for the cachebuster, served from a tag plan
        request(collector.port, f"/imptr?id={w.imp}&cachebuster={next(hits)}")
        mine = [e for e in collector.events() if e["tracker_id"] == w.imp]
        return int(mine[-1]["media_cost_micros"])

    assert last_cost() == 1_000
    assert last_cost() == 1_000  # now from the tag plan
    service.payment_rules.update(w.rule, {"cost_cpm_micros": 3_000_000})
    within_two_seconds(lambda: last_cost() == 3_000)
    assert collector.cache.reloads == 1


def test_a_collector_that_missed_trimmed_changes_reloads_everything(engine: Engine) -> None:
    service = CatalogueService(partial(SqlUnitOfWork, engine, changes_kept=2))
    w = make_world(service)
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    service.trackers.update(w.imp, {"name": "one"})
    assert cache.refresh_if_changed() and cache.reloads == 1  # caught up from the log
    for n in range(4):  # more versions than the log keeps
        service.line_items.update(w.line_item, {"revenue_value_micros": (n + 2) * 1_000_000})
    assert cache.refresh_if_changed()
    assert cache.reloads == 2  # the log could not bring it up to date: full reload
    assert price_now(cache.by_id(w.imp))[1] == 5_000  # type: ignore[arg-type]


def test_a_write_that_recorded_no_changes_makes_the_collector_reload(
    engine: Engine, service: CatalogueService
) -> None:
    w = make_world(service)
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    with engine.begin() as conn:  # a write outside the catalogue service: no change rows
        conn.execute(update(t.trackers).where(t.trackers.c.id == w.imp).values(state="inactive"))
        conn.execute(update(t.catalogue_version).values(version=t.catalogue_version.c.version + 1))
    assert cache.refresh_if_changed()
    assert cache.reloads == 2 and cache.incremental_applies == 0
    assert not cache.by_id(w.imp).active  # type: ignore[union-attr]


# ---- incremental == full load, after random edits -------------------------------------------


def snapshot(cache: TrackerCache, at_us: list[int]) -> dict[int, tuple[Any, ...]]:
    out = {}
    for tracker_id in sorted(cache._tables.by_id):  # noqa: SLF001
        tr = cache.by_id(tracker_id)
        assert tr is not None and not tr.retired
        assert cache.by_code(tr.imp_type, tr.code) is tr if tr.code else True
        prices = tuple(
            tr.plan.price_window(kind, us, None)[0] for kind in (IMPRESSION, CLICK) for us in at_us
        )
        out[tracker_id] = (
            tr.imp_type,
            tr.code,
            tr.active,
            tr.advertiser_id,
            tr.line_item_id,
            tr.publisher_id,
            tr.placement_id,
            tr.landing_page,
            tr.record_fragment,
            tr.redirects,
            prices,
        )
    codes = {key: tr.id for key, tr in cache._tables.by_code.items()}  # noqa: SLF001
    out[0] = (tuple(sorted(codes.items())),)
    return out


def random_edit(rng: random.Random, service: CatalogueService, w: World, made: list[int]) -> None:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    choice = rng.randrange(9)
    try:
        if choice == 0 or not made:
            made.append(
                service.trackers.create(
                    {
                        "name": "T",
                        "tracker_type": rng.choice(["impression", "click"]),
                        "code": rng.choice([None, f"C{rng.randrange(6)}"]),
                        "line_item_id": rng.choice([w.line_item, w.other_line_item]),
                        "publisher_id": w.publisher,
                        "placement_id": rng.choice([None, w.placement]),
                        "payment_rule_id": rng.choice([None, w.rule]),
                    }
                ).id
            )
        elif choice == 1:
            service.trackers.update(
                rng.choice(made),
                {
                    "state": rng.choice(["active", "inactive"]),
                    "line_item_id": rng.choice([w.line_item, w.other_line_item]),
                    "code": rng.choice([None, f"C{rng.randrange(6)}"]),
                },
            )
        elif choice == 2:
            victim = rng.choice(made)
            service.trackers.delete(victim)
            made.remove(victim)
        elif choice == 3:
            service.line_items.update(
                rng.choice([w.line_item, w.other_line_item]),
                {
                    "revenue_type": rng.choice(["cpm", "cpc", "none"]),
                    "revenue_value_micros": rng.randrange(10) * 1_000_000,
                    "state": rng.choice(["active", "inactive"]),
                    "start_date": rng.choice([None, day - timedelta(days=1)]),
                    "end_date": rng.choice([None, day + timedelta(days=1)]),
                },
            )
        elif choice == 4:
            service.payment_rules.update(
                w.rule,
                {
                    "cost_cpm_micros": rng.randrange(10) * 1_000_000,
                    "state": rng.choice(["active", "inactive"]),
                    "priority": rng.randrange(1, 10),
                    "advertiser_filter": rng.choice([None, "include", "exclude"]),
                    "advertiser_ids": rng.choice([[], [w.advertiser], [w.other_advertiser]]),
                },
            )
        elif choice == 5:
            service.advertisers.update(
                rng.choice([w.advertiser, w.other_advertiser]),
                {
                    "redirect_policy": rng.choice([None, "trackers", "allow-list", "open"]),
                    "landing_domains": rng.choice([[], ["shop.example"], ["*.ads.example"]]),
                },
            )
        elif choice == 6:
            service.publishers.update(w.publisher, {"name": f"P{rng.randrange(100)}"})
        elif choice == 7:
            service.placements.update(w.placement, {"state": rng.choice(["active", "inactive"])})
        else:
            base = service.payment_rules.list(publisher_id=w.publisher, is_base=True).items[0]
            service.payment_rules.update(base.id, {"revshare_ppm": rng.randrange(0, 1_000_000)})
    except Exception as exc:  # a refused edit (a code clash, a filter rule) changes nothing
        if type(exc).__name__ not in ("ValidationError", "Conflict", "InUse", "NotFound"):
            raise


@pytest.mark.parametrize("seed", [1, 2])
def test_after_random_edits_the_incremental_cache_equals_a_full_load(
    engine: Engine, service: CatalogueService, seed: int
) -> None:
    rng = random.Random(seed)
    w = make_world(service)
    made = [w.imp, w.click]
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    now_us = int(time.time() * 1e6)
    at_us = [now_us + d * 86_400_000_000 for d in (-3, -1, 0, 1, 3)]
    moved = 0  # rounds in which some edit was accepted
    for _ in range(12):
        for _ in range(rng.randrange(1, 5)):
            random_edit(rng, service, w, made)
        moved += cache.refresh_if_changed()
        fresh = TrackerCache(SqlTrackerCatalogue(engine))
        fresh.load()
        assert cache.version == fresh.version
        assert snapshot(cache, at_us) == snapshot(fresh, at_us)
    assert moved >= 8
    assert cache.reloads == 1 and cache.incremental_applies == moved


def tracked_by_gc(obj: object) -> bool:
    """Whether the cycle collector's generations hold ``obj`` (frozen objects are in none)."""
    import gc

    return any(candidate is obj for candidate in gc.get_objects())


def test_a_collector_process_freezes_its_loaded_cache_out_of_the_cycle_collector(
    engine: Engine, service: CatalogueService
) -> None:
    import gc

    w = make_world(service)
    gc.unfreeze()
    cache = TrackerCache(SqlTrackerCatalogue(engine), freeze_after_load=True)
    try:
        cache.load()
        assert gc.get_freeze_count() > 0
        assert not tracked_by_gc(cache.by_id(w.imp))
    finally:
        gc.unfreeze()
    # the default (tests, the API process) leaves gc alone
    plain = TrackerCache(SqlTrackerCatalogue(engine))
    plain.load()
    assert gc.get_freeze_count() == 0
    assert tracked_by_gc(plain.by_id(w.imp))
