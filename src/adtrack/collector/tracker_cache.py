"""The collector's in-memory view of the catalogue: trackers with their compiled pricing.

* :meth:`TrackerCache.load` reads every live tracker, line item, payment rule and rule filter
  (and each advertiser's redirect policy and landing domains) with SQLAlchemy Core (no ORM)
  and swaps in new lookup tables in one assignment, so the hot path never sees a half-built
  cache and never takes a lock. Collectors do this once at start-up.
* A background thread polls ``catalogue_version`` (one row) every ``poll_interval`` seconds
  (0.5 s). When it moved, the thread reads the ``catalogue_changes`` rows after the version it
  holds and rebuilds only the trackers they touch (:meth:`TrackerCache.refresh_if_changed`):
  a changed tracker itself; every tracker of a changed line item, advertiser (redirect policy,
  landing domains), publisher or placement; every tracker priced by a changed payment rule
  (its own rule, or one of its publisher's). Deleted and deactivated trackers are replaced or
  dropped. Each replaced :class:`CachedTracker` is marked ``retired`` so the hot path drops
  what it derived from it (tag plans: price, redirect policy). A collector that cannot catch
  up from the log (trimmed past its version, a version without change rows, or too many
  changes at once) reloads everything instead, and so does the ``full_reload_interval``
  safety net. A store that is down keeps the last good cache in use. In a collector
  process a load ends with ``gc.freeze()``: the cycle collector would otherwise stall the
  process walking the cache.
* An id or code the cache does not know is looked up in the store on a worker thread
  (:meth:`TrackerCache.lookup`), so a tracker's very first impression counts even before the
  next poll. Lookups are rate-limited (token bucket) and misses are remembered in a bounded
  negative cache (LRU with a TTL of a few seconds), so garbage ids cannot hammer the store.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from adtrack.adapters.sql import tables as t
from adtrack.collector.query import safe_redirect_target
from adtrack.collector.records import tracker_fragment
from adtrack.collector.redirect_policy import NO_OVERRIDE, AdvertiserRedirects
from adtrack.domain.model import (
    FilterAction,
    ImpType,
    LineItem,
    PaymentRule,
    PricingType,
    RevenueType,
    State,
    TrackerType,
)
from adtrack.domain.pricing import PricingPlan

__all__ = ["CachedTracker", "TrackerCache"]

# Change-log kinds (table names) whose rows the trackers reference, by tracker column.
_FAN_OUT = {
    t.line_items.name: t.trackers.c.line_item_id,
    t.advertisers.name: t.trackers.c.advertiser_id,
    t.publishers.name: t.trackers.c.publisher_id,
    t.placements.name: t.trackers.c.placement_id,
}
# The tracker columns the cache uses (not names or timestamps: parsing them is most of a
# full load's time on SQLite).
_TRACKER_COLUMNS = tuple(
    t.trackers.c[name]
    for name in (
        "id",
        "tracker_type",
        "code",
        "state",
        "advertiser_id",
        "line_item_id",
        "publisher_id",
        "placement_id",
        "payment_rule_id",
        "landing_page_url",
    )
)
# Ids per IN (...) list: well under every database's bound-parameter limit.
_CHUNK = 500

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class CachedTracker:
    """What the hot path needs to know about one tracker.

    Treat it as read-only: only the cache sets ``retired``, when a newer copy replaced it.
    """

    id: int
    imp_type: int  # 9 impression tracker, 10 click tracker
    code: str | None
    active: bool
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    landing_page: bytes | None  # a safe Location value (click trackers), or None
    plan: PricingPlan
    record_fragment: bytes  # this tracker's ids, pre-encoded for the event record
    # its advertiser's redirect policy override and landing domains
    redirects: AdvertiserRedirects = NO_OVERRIDE
    # set once a newer copy replaced this one in the cache: anything derived from it is stale
    retired: bool = False


# Lookup keys: ("id", 123) or (imp_type, "code").
LookupKey = tuple[Any, Any]


def _state(value: Any) -> State:
    return State.ACTIVE if value == State.ACTIVE.value else State.INACTIVE


def _line_item(row: Any) -> LineItem:
    try:
        revenue_type = RevenueType(row.revenue_type)
    except ValueError:
        revenue_type = RevenueType.NONE
    return LineItem(
        id=row.id,
        advertiser_id=row.advertiser_id,
        name=row.name,
        state=_state(row.state),
        revenue_type=revenue_type,
        revenue_value_micros=int(row.revenue_value_micros or 0),
        start_date=row.start_date,
        end_date=row.end_date,
    )


def _filter_action(value: Any) -> FilterAction | None:
    try:
        return None if value is None else FilterAction(value)
    except ValueError:
        return None


def _payment_rule(row: Any, filters: dict[tuple[int, str], set[int]]) -> PaymentRule | None:
    try:
        pricing_type = PricingType(row.pricing_type)
    except ValueError:
        log.warning(
            "payment rule %s has unknown pricing type %r; ignored", row.id, row.pricing_type
        )
        return None
    return PaymentRule(
        id=row.id,
        publisher_id=row.publisher_id,
        name=row.name,
        state=_state(row.state),
        is_base=bool(row.is_base),
        pricing_type=pricing_type,
        revshare_ppm=int(row.revshare_ppm or 0),
        cost_cpm_micros=int(row.cost_cpm_micros or 0),
        cost_cpc_micros=int(row.cost_cpc_micros or 0),
        priority=int(row.priority if row.priority is not None else 5),
        start_date=row.start_date,
        end_date=row.end_date,
        advertiser_filter=_filter_action(row.advertiser_filter),
        advertiser_ids=frozenset(filters.get((row.id, "advertiser"), ())),
        line_item_filter=_filter_action(row.line_item_filter),
        line_item_ids=frozenset(filters.get((row.id, "line_item"), ())),
    )


_CLICK_TYPE = TrackerType.CLICK.value
_CLICK = int(ImpType.EXTERNAL_CLICK)
_IMPRESSION = int(ImpType.EXTERNAL_IMPRESSION)


def _build(conn: Connection, tracker_rows: Sequence[Any], *, all_rows: bool) -> list[CachedTracker]:
    """Compile trackers: fetch their line items and their publishers' rules, then plan."""
    if not tracker_rows:
        return []
    li_query = select(t.line_items).where(t.line_items.c.deleted_at.is_(None))
    rule_query = select(t.payment_rules).where(t.payment_rules.c.deleted_at.is_(None))
    filter_query = select(t.payment_rule_filters)
    if not all_rows:
        li_ids = {row.line_item_id for row in tracker_rows}
        pub_ids = {row.publisher_id for row in tracker_rows}
        own_rule_ids = {row.payment_rule_id for row in tracker_rows if row.payment_rule_id}
        li_query = li_query.where(t.line_items.c.id.in_(li_ids))
        rule_query = rule_query.where(
            t.payment_rules.c.publisher_id.in_(pub_ids) | t.payment_rules.c.id.in_(own_rule_ids)
        )
    advertiser_query = select(
        t.advertisers.c.id, t.advertisers.c.redirect_policy, t.advertisers.c.landing_domains
    ).where(t.advertisers.c.deleted_at.is_(None))
    if not all_rows:
        advertiser_query = advertiser_query.where(
            t.advertisers.c.id.in_({row.advertiser_id for row in tracker_rows})
        )
    redirects = {
        row.id: AdvertiserRedirects.of(row.redirect_policy, row.landing_domains)
        for row in conn.execute(advertiser_query)
    }
    line_items = {row.id: _line_item(row) for row in conn.execute(li_query)}
    rule_rows = list(conn.execute(rule_query))
    if not all_rows:
        filter_query = filter_query.where(
            t.payment_rule_filters.c.payment_rule_id.in_([row.id for row in rule_rows])
        )
    filters: dict[tuple[int, str], set[int]] = {}
    for row in conn.execute(filter_query):
        filters.setdefault((row.payment_rule_id, row.kind), set()).add(row.object_id)
    rules: dict[int, PaymentRule] = {}
    by_publisher: dict[int, list[PaymentRule]] = {}
    for row in rule_rows:
        rule = _payment_rule(row, filters)
        if rule is not None:
            rules[rule.id] = rule
            by_publisher.setdefault(rule.publisher_id, []).append(rule)
    out = []
    plans: dict[tuple[int, int | None, int, int], PricingPlan] = {}
    active = State.ACTIVE.value
    for row in tracker_rows:
        # plain tuple unpacking: attribute access on 100,000 rows is a large part of a load
        (tid, tracker_type, code, state, adv, li, pub, placement, rule_id, landing_url) = row
        landing = None
        if landing_url:
            landing = safe_redirect_target(str(landing_url).strip().encode("utf-8"))
        # trackers with the same pricing inputs share one plan (most of a tracker's memory)
        plan_key = (li, rule_id, pub, adv)
        plan = plans.get(plan_key)
        if plan is None:
            plan = plans[plan_key] = PricingPlan(
                line_item=line_items.get(li),
                tracker_rule=rules.get(rule_id) if rule_id else None,
                publisher_rules=by_publisher.get(pub, ()),
                advertiser_id=adv,
                line_item_id=li,
            )
        imp_type = _CLICK if tracker_type == _CLICK_TYPE else _IMPRESSION
        out.append(
            CachedTracker(
                tid,
                imp_type,
                code,
                state == active,
                adv,
                li,
                pub,
                placement,
                landing,
                plan,
                tracker_fragment(imp_type, tid, adv, li, pub, placement),
                redirects.get(adv, NO_OVERRIDE),
            )
        )
    return out


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Without the cycle collector: it would walk the growing cache again and again (half
    of a 100,000-tracker load's time); reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _rule_publishers(conn: Connection, rule_ids: set[int] | None) -> dict[int, int]:
    """The publisher of each live payment rule (of ``rule_ids``, or of all when None)."""
    pr = t.payment_rules
    query = select(pr.c.id, pr.c.publisher_id).where(pr.c.deleted_at.is_(None))
    if rule_ids is None:
        return {int(r): int(p) for r, p in conn.execute(query)}
    out: dict[int, int] = {}
    for chunk in _chunks(sorted(rule_ids)):
        out.update((int(r), int(p)) for r, p in conn.execute(query.where(pr.c.id.in_(chunk))))
    return out


class _Tables:
    """One consistent generation of the lookup tables (swapped as a whole)."""

    __slots__ = ("by_id", "by_code")

    def __init__(self, trackers: Iterable[CachedTracker] = ()) -> None:
        self.by_id: dict[int, CachedTracker] = {}
        self.by_code: dict[tuple[int, str], CachedTracker] = {}
        for tracker in trackers:
            self.add(tracker)

    def add(self, tracker: CachedTracker) -> None:
        """Add or replace ``tracker``; the copy it replaces is retired."""
        old = self.by_id.get(tracker.id)
        self.by_id[tracker.id] = tracker
        if old is not None and old is not tracker:
            self._drop_code(old)
            old.retired = True
        if tracker.code:
            self.by_code[(tracker.imp_type, tracker.code)] = tracker

    def remove(self, tracker_id: int) -> None:
        old = self.by_id.pop(tracker_id, None)
        if old is not None:
            self._drop_code(old)
            old.retired = True

    def _drop_code(self, old: CachedTracker) -> None:
        if old.code and self.by_code.get((old.imp_type, old.code)) is old:
            del self.by_code[(old.imp_type, old.code)]


class TrackerCache:
    """Trackers by id and by (impression type, code), kept fresh from the store."""

    def __init__(
        self,
        engine: Engine,
        *,
        poll_interval: float = 0.5,
        full_reload_interval: float = 3600.0,
        max_incremental_changes: int = 20_000,
        freeze_after_load: bool = False,
        lookups_per_second: float = 20.0,
        negative_ttl: float = 5.0,
        negative_max_entries: int = 10_000,
        lookup_timeout: float = 2.0,
    ) -> None:
        self._engine = engine
        self._tables = _Tables()
        # bumped whenever a tracker may have changed: what was derived from the old ones is stale
        self.generation = 0
        self._version: int | None = None
        self._loaded_at = 0.0
        self._poll_interval = poll_interval
        self._full_reload_interval = full_reload_interval
        self._max_incremental = max_incremental_changes
        self._freeze = freeze_after_load  # for a process that is mostly this cache: see load()
        # the publisher of each payment rule the trackers were priced with (a rule that moves
        # to another publisher must reprice the trackers of both)
        self._rule_publishers: dict[int, int] = {}
        self.incremental_applies = 0
        # counts loads and applies as they start (under _reload_lock): lookups compare it
        self._updates = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()
        # unknown-key lookups
        self._rate = lookups_per_second
        self._tokens = lookups_per_second
        self._tokens_at = time.monotonic()
        self._negative: OrderedDict[LookupKey, float] = OrderedDict()
        self._negative_ttl = negative_ttl
        self._negative_max = negative_max_entries
        self._lookup_timeout = lookup_timeout
        self._inflight: dict[LookupKey, asyncio.Future[CachedTracker | None]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self.reloads = 0
        self.lookups = 0
        self.last_error: str | None = None

    # ---- reading ----

    def by_id(self, tracker_id: int) -> CachedTracker | None:
        return self._tables.by_id.get(tracker_id)

    def by_code(self, imp_type: int, code: str) -> CachedTracker | None:
        return self._tables.by_code.get((imp_type, code))

    def __len__(self) -> int:
        return len(self._tables.by_id)

    @property
    def version(self) -> int | None:
        """The ``catalogue_version`` the cache was last loaded at."""
        return self._version

    # ---- loading ----

    def _read_version(self, conn: Connection) -> tuple[int, int]:
        """The catalogue version and the version the change log is trimmed through."""
        cv = t.catalogue_version
        row = conn.execute(select(cv.c.version, cv.c.trimmed_through).where(cv.c.id == 1)).first()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def load(self) -> None:
        """(Re)load everything from the store; raises if the store cannot be read."""
        with self._reload_lock, self._engine.connect() as conn:
            self._updates += 1
            version, _ = self._read_version(conn)  # read first: a later write is applied later
            rows = conn.execute(select(*_TRACKER_COLUMNS).where(t.trackers.c.deleted_at.is_(None)))
            with _no_cyclic_gc():  # 100,000s of new objects, none of them garbage
                tables = _Tables(_build(conn, rows.all(), all_rows=True))
            self._rule_publishers = _rule_publishers(conn, None)
        self._tables = tables
        del tables
        if self._freeze:
            # Move the new cache out of the cycle collector's sight: a full collection walks
            # every tracked object, and with 100,000 trackers that stalls every thread (the hot
            # path's too) for 0.1-0.2 s. Nothing in the cache forms cycles, so reference
            # counting frees the copies later changes replace. The young garbage of the load
            # goes first. (Process-wide: what else is alive now is frozen too, so only for a
            # collector process, whose other objects live as long as it does.)
            gc.collect(1)
            gc.freeze()
        self.generation += 1
        self._version = version
        self._loaded_at = time.monotonic()
        self._negative.clear()
        self.reloads += 1

    def refresh_if_changed(self) -> bool:
        """Apply the catalogue changes made since the cache's version (or reload everything
        when the change log cannot bring it up to date, or the safety interval passed)."""
        with self._engine.connect() as conn:
            version, trimmed_through = self._read_version(conn)
            stale = time.monotonic() - self._loaded_at >= self._full_reload_interval
            held = self._version
            if version == held and not stale:
                return False
            if held is None or stale or version < held or trimmed_through > held:
                applied = False
            else:
                with self._reload_lock:
                    self._updates += 1
                    applied = self._apply_changes(conn, held, version)
        if not applied:
            self.load()
        return True

    def _apply_changes(self, conn: Connection, held: int, version: int) -> bool:
        """Rebuild the trackers changed in versions (held, version]; False if the log cannot
        say what they are (the caller then reloads everything)."""
        c = t.catalogue_changes
        changes = conn.execute(
            select(c.c.version, c.c.kind, c.c.entity_id)
            .where(c.c.version > held, c.c.version <= version)
            .limit(self._max_incremental + 1)
        ).all()
        if len(changes) > self._max_incremental:
            return False  # a bulk edit: one full load is cheaper than many partial ones
        if len({row.version for row in changes}) != version - held:
            return False  # trimmed meanwhile, or a write that did not record its rows
        ids: dict[str, set[int]] = {}
        for row in changes:
            ids.setdefault(row.kind, set()).add(int(row.entity_id))
        tracker_ids = ids.get(t.trackers.name, set())
        rule_ids = ids.get(t.payment_rules.name, set())
        # the trackers that depend on what changed (see the module docstring), by column
        wanted: list[tuple[Any, set[int]]] = [(t.trackers.c.id, tracker_ids)]
        wanted.extend((column, ids[kind]) for kind, column in _FAN_OUT.items() if kind in ids)
        rules_now = _rule_publishers(conn, rule_ids) if rule_ids else {}
        if rule_ids:
            publishers = set(rules_now.values())
            publishers.update(
                self._rule_publishers[r] for r in rule_ids if r in self._rule_publishers
            )
            wanted.append((t.trackers.c.payment_rule_id, rule_ids))
            wanted.append((t.trackers.c.publisher_id, publishers))
        live = t.trackers.c.deleted_at.is_(None)
        unique: dict[int, Any] = {}
        for column, values in wanted:
            for chunk in _chunks(sorted(values)):
                for row in conn.execute(select(*_TRACKER_COLUMNS).where(live, column.in_(chunk))):
                    unique[row.id] = row
        # many trackers (a publisher's base rule): read their pricing inputs whole, not by id
        built = _build(conn, list(unique.values()), all_rows=len(unique) > _CHUNK)
        tables = self._tables
        for tracker in built:
            tables.add(tracker)  # retires the copy it replaces: its tag plans are rebuilt
        for gone in tracker_ids - unique.keys():
            tables.remove(gone)  # deleted (or never live)
        for rule_id in rule_ids:
            if rule_id in rules_now:
                self._rule_publishers[rule_id] = rules_now[rule_id]
            else:
                self._rule_publishers.pop(rule_id, None)
        self._version = version
        if tracker_ids:
            self._negative.clear()  # a new tracker may have been refused a moment ago
        self.incremental_applies += 1
        return True

    def start(self) -> None:
        """Start the polling thread (call :meth:`load` first)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="tracker-cache-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.refresh_if_changed()
                self.last_error = None
            except Exception as exc:  # the store is down: keep serving the last good cache
                if self.last_error is None:
                    log.warning("tracker cache refresh failed: %s", exc)
                self.last_error = str(exc)

    # ---- unknown keys ----

    def may_lookup(self, key: LookupKey) -> bool:
        """Whether an unknown key should be looked up in the store now.

        False when it is in the negative cache or the lookup budget is spent. Cheap.
        """
        now = time.monotonic()
        negative = self._negative
        expires = negative.get(key)
        if expires is not None:
            if expires > now:
                return False
            negative.pop(key, None)
        if key in self._inflight:
            return True
        self._tokens = min(self._rate, self._tokens + (now - self._tokens_at) * self._rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _remember_missing(self, key: LookupKey) -> None:
        negative = self._negative
        negative[key] = time.monotonic() + self._negative_ttl
        negative.move_to_end(key)
        while len(negative) > self._negative_max:
            negative.popitem(last=False)

    def _fetch(self, key: LookupKey) -> CachedTracker | None:
        query = select(*_TRACKER_COLUMNS).where(t.trackers.c.deleted_at.is_(None))
        if key[0] == "id":
            query = query.where(t.trackers.c.id == key[1])
        else:
            tracker_type = (
                TrackerType.CLICK.value
                if key[0] == int(ImpType.EXTERNAL_CLICK)
                else TrackerType.IMPRESSION.value
            )
            query = query.where(
                (t.trackers.c.code == key[1]) & (t.trackers.c.tracker_type == tracker_type)
            )
        with self._engine.connect() as conn:
            rows = list(conn.execute(query.limit(1)))
            built = _build(conn, rows, all_rows=False)
        return built[0] if built else None

    async def lookup(self, key: LookupKey) -> CachedTracker | None:
        """Look ``key`` up in the store (on a worker thread); None if absent or unreachable.

        A found tracker is added to the cache; concurrent lookups of one key share one query.
        """
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CachedTracker | None] = loop.create_future()
        self._inflight[key] = future
        result: CachedTracker | None = None
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="tracker-lookup")
            self.lookups += 1
            held = self._updates
            result = await asyncio.wait_for(
                loop.run_in_executor(self._executor, self._fetch, key), self._lookup_timeout
            )
            if result is None:
                self._remember_missing(key)
            elif self._reload_lock.acquire(blocking=False):
                try:
                    # not if changes were applied since the read: this copy may predate one
                    # of them (a deletion would then never replace it); answered, not kept
                    if self._updates == held:
                        self._tables.add(result)  # retires an older copy, if any
                finally:
                    self._reload_lock.release()
        except Exception as exc:  # unreachable store: the request is answered as unknown
            log.warning("tracker lookup %r failed: %s", key, exc)
            result = None
        finally:
            del self._inflight[key]
            if not future.done():
                future.set_result(result)
        return result
