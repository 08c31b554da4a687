"""The collector's in-memory view of the catalogue: trackers with their compiled pricing, and
the conversion pixels, kept fresh from a :class:`~adtrack.services.ports.TrackerCatalogue`.

* :meth:`TrackerCache.load` reads the whole live catalogue and swaps in new lookup tables
  (:class:`TrackerTables`) in one assignment, so the hot path never sees a half-built cache and
  never takes a lock. Collectors do this once at start-up. In a collector process a load ends
  with ``gc.freeze()``: the cycle collector would otherwise stall the process walking the cache.
* A :class:`CataloguePoller` thread calls :meth:`TrackerCache.refresh_if_changed` every
  ``poll_interval`` seconds (0.5 s). When the catalogue version moved, it rebuilds only the
  trackers the change log says were touched (see ``TrackerCatalogue.changes``). Deleted and
  deactivated trackers are replaced or dropped. Each replaced :class:`CachedTracker` is marked
  ``retired`` so the hot path drops what it derived from it (tag plans: price, redirect
  policy). A collector that cannot catch up from the log (trimmed past its version, a version
  without change rows, or too many changes at once) reloads everything instead, and so does
  the ``full_reload_interval`` safety net.
* An id or code the cache does not know is looked up in the store on a worker thread
  (:meth:`TrackerCache.lookup`), so a tracker's very first impression counts even before the
  next poll; :class:`UnknownIds` decides which unknown keys may be looked up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from adtrack.collector.catalogue_poller import CataloguePoller
from adtrack.collector.tracker_compile import compile_trackers
from adtrack.collector.tracker_tables import CachedPixel, CachedTracker, LookupKey, TrackerTables
from adtrack.collector.unknown_ids import UnknownIds
from adtrack.domain.model import ImpType, TrackerType
from adtrack.services.ports import TrackerCatalogue, TrackerInputs

__all__ = ["TrackerCache"]

log = logging.getLogger(__name__)


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


class TrackerCache:
    """Trackers by id and by (impression type, code), kept fresh from the store."""

    def __init__(
        self,
        catalogue: TrackerCatalogue,
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
        self._catalogue = catalogue
        self._tables = TrackerTables()
        # bumped whenever a tracker may have changed: what was derived from the old ones is stale
        self.generation = 0
        self._version: int | None = None
        self._loaded_at = 0.0
        self._full_reload_interval = full_reload_interval
        self._max_incremental = max_incremental_changes
        self._freeze = freeze_after_load  # for a process that is mostly this cache: see load()
        # the publisher of each payment rule the trackers were priced with (a rule that moves
        # to another publisher must reprice the trackers of both)
        self._rule_publishers: dict[int, int] = {}
        self.incremental_applies = 0
        # counts loads and applies as they start (under _reload_lock): lookups compare it
        self._updates = 0
        self._reload_lock = threading.Lock()
        self._poller = CataloguePoller(self.refresh_if_changed, poll_interval)
        self._lookup_timeout = lookup_timeout
        self._inflight: dict[LookupKey, asyncio.Future[CachedTracker | None]] = {}
        self.unknown_ids = UnknownIds(
            self._inflight,
            lookups_per_second=lookups_per_second,
            negative_ttl=negative_ttl,
            max_entries=negative_max_entries,
        )
        # whether an unknown key should be looked up now: the hot path calls it directly
        self.may_lookup: Callable[[LookupKey], bool] = self.unknown_ids.may_look_up
        self._executor: ThreadPoolExecutor | None = None
        self.reloads = 0
        self.lookups = 0

    # ---- reading ----

    def by_id(self, tracker_id: int) -> CachedTracker | None:
        return self._tables.by_id.get(tracker_id)

    def by_code(self, imp_type: int, code: str) -> CachedTracker | None:
        return self._tables.by_code.get((imp_type, code))

    def pixel_by_id(self, pixel_id: int) -> CachedPixel | None:
        return self._tables.pixels_by_id.get(pixel_id)

    def pixel_by_code(self, code: str) -> CachedPixel | None:
        return self._tables.pixels_by_code.get(code)

    def __len__(self) -> int:
        return len(self._tables.by_id)

    @property
    def version(self) -> int | None:
        """The ``catalogue_version`` the cache was last loaded at."""
        return self._version

    # ---- loading ----

    def load(self) -> None:
        """(Re)load everything from the store; raises if the store cannot be read."""
        with self._reload_lock:
            self._updates += 1
            with _no_cyclic_gc():  # 100,000s of new objects, none of them garbage
                loaded = self._catalogue.load()
                version, self._rule_publishers = loaded.version, loaded.rule_publishers
                trackers = compile_trackers(loaded.inputs)
                cookies = loaded.pixel_cookie_advertisers
                pixels = [
                    CachedPixel.of(pixel, pixel.advertiser_id in cookies) for pixel in loaded.pixels
                ]
                del loaded  # the rows go before the tables grow: less memory kept after
                tables = TrackerTables(trackers, pixels)
                del trackers
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
        self.unknown_ids.forget_misses()
        self.reloads += 1

    def refresh_if_changed(self) -> bool:
        """Apply the catalogue changes made since the cache's version (or reload everything
        when the change log cannot bring it up to date, or the safety interval passed)."""
        version, trimmed_through = self._catalogue.version()
        stale = time.monotonic() - self._loaded_at >= self._full_reload_interval
        held = self._version
        if version == held and not stale:
            return False
        if held is None or stale or version < held or trimmed_through > held:
            applied = False
        else:
            with self._reload_lock:
                self._updates += 1
                applied = self._apply_changes(held, version)
        if not applied:
            self.load()
        return True

    def _apply_changes(self, held: int, version: int) -> bool:
        """Rebuild the trackers changed in versions (held, version]; False if the log cannot
        say what they are (the caller then reloads everything)."""
        changes = self._catalogue.changes(
            held,
            version,
            max_changes=self._max_incremental,
            rule_publishers=self._rule_publishers,
        )
        if changes is None:
            return False
        built = compile_trackers(changes.inputs)
        tables = self._tables
        for tracker in built:
            tables.add(tracker)  # retires the copy it replaces: its tag plans are rebuilt
        for gone in changes.tracker_ids - {tracker.id for tracker in built}:
            tables.remove(gone)  # deleted (or never live)
        for pixel in changes.pixels:
            reads_cookies = pixel.advertiser_id in changes.pixel_cookie_advertisers
            tables.add_pixel(CachedPixel.of(pixel, reads_cookies))
        for gone in changes.pixel_ids - {pixel.id for pixel in changes.pixels}:
            tables.remove_pixel(gone)
        for rule_id in changes.rule_ids:
            if rule_id in changes.rule_publishers:
                self._rule_publishers[rule_id] = changes.rule_publishers[rule_id]
            else:
                self._rule_publishers.pop(rule_id, None)
        self._version = version
        if changes.tracker_ids:
            self.unknown_ids.forget_misses()  # a new tracker may have been refused a moment ago
        self.incremental_applies += 1
        return True

    def start(self) -> None:
        """Start the polling thread (call :meth:`load` first)."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # ---- unknown keys ----

    def _fetch(self, key: LookupKey) -> CachedTracker | None:
        inputs: TrackerInputs
        match key:
            case (str(), int(tracker_id)):  # ("id", 123)
                inputs = self._catalogue.find_by_id(tracker_id)
            case (int(imp_type), str(code)):
                click = imp_type == int(ImpType.EXTERNAL_CLICK)
                tracker_type = TrackerType.CLICK if click else TrackerType.IMPRESSION
                inputs = self._catalogue.find_by_code(tracker_type, code)
        built = compile_trackers(inputs)
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
                self.unknown_ids.missed(key)
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
