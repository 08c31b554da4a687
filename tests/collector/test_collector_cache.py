"""The collector's tracker cache against a real store (SQLite and PostgreSQL): catalogue changes
apply within 2 seconds, a tracker's very first impression counts, unknown ids are looked up with
a rate limit and a bounded negative cache."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.core import RequestView, TrackingCore
from adtrack.collector.responses import PIXEL_GIF
from adtrack.collector.tracker_cache import TrackerCache
from adtrack.collector.tracker_tables import CachedTracker, LookupKey
from tests.support.collector import (
    Basic,
    Catalogue,
    ThreadCollector,
    basic_catalogue,
    request,
    settings_for,
    start_thread_collector,
)

CollectorFactory = Callable[..., ThreadCollector]


@pytest.fixture
def start(tmp_path: Path, engine: Engine, migrated_db_url: str) -> Iterator[CollectorFactory]:
    started: list[ThreadCollector] = []

    def factory(**cache_options: object) -> ThreadCollector:
        collector = start_thread_collector(
            settings_for(tmp_path / str(len(started)), migrated_db_url), engine, **cache_options
        )
        started.append(collector)
        return collector

    try:
        yield factory
    finally:
        for collector in started:
            collector.stop()


@pytest.fixture
def cat(engine: Engine) -> Catalogue:
    return Catalogue(engine)


def wait_until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds it took for ``check()`` to hold (fails after ``timeout``)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def count_for(collector: ThreadCollector, tracker_id: int) -> int:
    return sum(1 for e in collector.events() if e["tracker_id"] == tracker_id)


def test_changes_apply_within_two_seconds(cat: Catalogue, start: CollectorFactory) -> None:
    b: Basic = basic_catalogue(cat)
    collector = start()
    port = collector.port
    # shaped like an exported tag, so what the collector remembers per tag must follow too
    hits = itertools.count()

    def hit() -> str:
        return f"/imptr?id={b.imp}&cachebuster={next(hits)}"

    def recorded_now() -> bool:
        before = count_for(collector, b.imp)
        assert request(port, hit()).body == PIXEL_GIF
        return count_for(collector, b.imp) == before + 1

    assert recorded_now()
    # deactivated: rejected within 2 s
    cat.update(t.trackers, b.imp, state="inactive")
    assert wait_until(lambda: not recorded_now(), 2.0) < 2.0
    # reactivated
    cat.update(t.trackers, b.imp, state="active")
    wait_until(recorded_now, 2.0)

    # a changed payment rule prices new events within 2 s
    cat.update(t.payment_rules, b.base_rule, cost_cpm_micros=7_000_000)

    def cost() -> int:
        request(port, hit())
        return int(
            [e for e in collector.events() if e["tracker_id"] == b.imp][-1]["media_cost_micros"]
        )

    wait_until(lambda: cost() == 7_000, 2.0)

    # a changed line item books differently within 2 s
    cat.update(t.line_items, b.line_item, revenue_value_micros=8_000_000)

    def revenue() -> int:
        request(port, hit())
        return int(
            [e for e in collector.events() if e["tracker_id"] == b.imp][-1]["booked_revenue_micros"]
        )

    wait_until(lambda: revenue() == 8_000, 2.0)

    # a new tracker (announced by the version bump) is in the cache within 2 s
    new = cat.tracker("impression", b.advertiser, b.line_item, b.publisher, code="fresh")
    wait_until(lambda: collector.cache.by_id(new) is not None, 2.0)
    # and its code changes with it
    cat.update(t.trackers, new, code="renamed")
    wait_until(lambda: collector.cache.by_code(9, "renamed") is not None, 2.0)


def test_a_trackers_very_first_impression_counts(cat: Catalogue, start: CollectorFactory) -> None:
    b = basic_catalogue(cat)
    collector = start(poll_interval=3600.0)  # no poll will notice: only the lookup can
    stamp = {
        "advertiser_id": b.advertiser,
        "line_item_id": b.line_item,
        "publisher_id": b.publisher,
        "state": "active",
    }
    tracker = cat.insert_silently(t.trackers, tracker_type="impression", name="new", **stamp)
    click = cat.insert_silently(
        t.trackers,
        tracker_type="click",
        name="new click",
        code="first-click",
        landing_page_url="https://lp.example/",
        **stamp,
    )
    assert collector.cache.by_id(tracker) is None
    assert request(collector.port, f"/imptr?id={tracker}&cachebuster=first").status == 200
    (event,) = [e for e in collector.events() if e["cachebuster"] == "first"]
    assert event["tracker_id"] == tracker and event["payment_rule_id"] == b.base_rule
    assert event["media_cost_micros"] == 2_000
    resp = request(collector.port, "/clktrb?code=first-click&cachebuster=first-c")
    assert resp.status == 302 and resp.headers["location"] == "https://lp.example/"
    assert [e["tracker_id"] for e in collector.events() if e["cachebuster"] == "first-c"] == [click]


def test_unknown_ids_are_looked_up_rate_limited_and_negatively_cached(
    cat: Catalogue, start: CollectorFactory
) -> None:
    b = basic_catalogue(cat)
    collector = start(poll_interval=3600.0, negative_ttl=1.0, lookups_per_second=5.0)
    cache = collector.cache
    for _ in range(5):
        assert request(collector.port, "/imptr?id=424242").body == PIXEL_GIF
    assert cache.lookups == 1  # then the negative cache answers
    # created now (silently) with that id: unknown while the miss is remembered, found after
    cat.insert_silently(
        t.trackers,
        id=424242,
        tracker_type="impression",
        name="late",
        advertiser_id=b.advertiser,
        line_item_id=b.line_item,
        publisher_id=b.publisher,
        state="active",
    )
    request(collector.port, "/imptr?id=424242&cachebuster=early")
    time.sleep(1.1)
    request(collector.port, "/imptr?id=424242&cachebuster=late")
    assert [e["cachebuster"] for e in collector.events()] == ["late"]
    # a flood of distinct unknown ids costs at most the lookup budget
    before = cache.lookups
    for n in range(40):
        request(collector.port, f"/imptr?id={900_000 + n}")
    assert cache.lookups - before <= 12  # 5/s budget over ~1-2 s of requests, plus the burst
    assert len(cache.unknown_ids) <= cache.unknown_ids.max_entries


def test_the_negative_cache_is_bounded(cat: Catalogue, start: CollectorFactory) -> None:
    basic_catalogue(cat)
    collector = start(poll_interval=3600.0, negative_max_entries=3, lookups_per_second=1000.0)
    for n in range(10):
        request(collector.port, f"/imptr?id={800_000 + n}")
    assert len(collector.cache.unknown_ids) <= 3


def test_a_looked_up_tracker_the_cache_does_not_keep_still_counts(
    cat: Catalogue, engine: Engine
) -> None:
    """A hit of a tracker created after the last load is looked up in the store. When a reload
    or an applied change overlaps that lookup, the cache does not keep the copy it read (it may
    predate the change); the request is still decided with that copy, never as unknown."""
    basic = basic_catalogue(cat)
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    fresh = cat.tracker(
        "impression", basic.advertiser, basic.line_item, basic.publisher, code="fresh"
    )
    core = TrackingCore(cache)
    for query in (f"id={fresh}&cachebuster=1".encode(), b"code=fresh&cachebuster=2"):
        hit = RequestView("GET", "/imptr", query, b"Mozilla/5.0")
        first = core.handle(hit)
        assert first.lookup is not None and first.record is None

        async def look_up(key: LookupKey) -> CachedTracker | None:
            return await cache.lookup(key)

        with cache._reload_lock:  # a reload in progress when the lookup ends: not kept
            found = asyncio.run(look_up(first.lookup))
        assert found is not None and found.id == fresh
        assert cache.by_id(fresh) is None
        outcome = core.handle(hit, False, found)
        assert outcome.record is not None and outcome.event is not None
        assert outcome.event.tracker_id == fresh
        assert core._tag_plans == {}  # no plan kept from a copy the cache does not hold


# The process entry points reach the store through bootstrap; every other module of the
# collector reads the catalogue through services.ports only.
_ENTRY_POINTS = ("adtrack.collector.listener", "adtrack.collector.__main__")
_IMPORT_THE_COLLECTOR = """
import importlib, pkgutil, sys
import adtrack.collector
for info in pkgutil.iter_modules(adtrack.collector.__path__):
    name = f"adtrack.collector.{info.name}"
    if name not in sys.argv[1:]:
        importlib.import_module(name)
print(sorted(m for m in sys.modules if m.startswith("adtrack.collector.")))
print(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy"))
print(sorted(m for m in sys.modules if m.startswith("adtrack.adapters")))
"""


def test_the_collector_modules_import_no_sql() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_THE_COLLECTOR, *_ENTRY_POINTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    collector, sql, adapters = result.stdout.splitlines()
    for module in ("core", "http_protocol", "asgi", "tracker_cache", "unknown_ids", "pool"):
        assert f"'adtrack.collector.{module}'" in collector
    assert "adtrack.collector.listener" not in collector
    assert (sql, adapters) == ("[]", "[]")


def test_a_rule_the_mapping_refuses_is_left_out_and_the_rest_is_priced(
    cat: Catalogue, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored value no enum knows (written around the service) costs that row only."""
    b = basic_catalogue(cat)
    odd = cat.payment_rule(b.publisher, pricing_type="barter", priority=10)
    conditional = cat.payment_rule(b.publisher, pricing_type="cpm", cost_cpm_micros=1_000_000)
    cache = TrackerCache(SqlTrackerCatalogue(engine))
    cache.load()
    tracker = cache.by_id(b.imp)
    assert tracker is not None
    assert tracker.plan.candidate_rule_ids == (conditional, b.base_rule)
    assert f"payment rule {odd} cannot be read" in caplog.text
