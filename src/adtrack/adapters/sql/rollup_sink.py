"""The rollup sink in SQL (the ``RollupSink`` port): one batch of events, exactly once by log
position.

Everything for a batch happens in ONE transaction:

1. the log positions: for every source the batch read (a segment of the local log, a JetStream
   partition), the stored position moves from the batch's start to its end, by compare-and-set
   (``UPDATE ... WHERE source = ? AND position = <start>``, or an insert for a source never
   committed). If any source's position is not where the batch started, another commit got
   there first (a replay, a redelivery, a second aggregator): the transaction is rolled back
   and :class:`PositionConflict` raised, so nothing is counted twice;
2. the batch's deltas (folded in memory, see ``aggregator/rollup.py``), added to the hourly and
   daily rollups, the audience rollups (geography, devices; hourly and daily, and by line item
   also monthly) and the invalid-traffic rollup with multi-row upserts
   (``imps = imps + excluded.imps``);
3. the raw-event archive files the batch was written to, listed in ``raw_event_files``;
   and the conversion pixel rollups (the counted conversions again, by pixel; hourly and
   daily);
4. the viewability states its beacons report (``RollupDelta.views``): inserted into
   ``view_beacons_seen`` (``ON CONFLICT DO NOTHING``), and only those inserted now add to
   ``viewable_imps`` / ``view_measured_imps``, so a repeated beacon, in this batch or any other,
   counts once. States of impressions more than ``view_dedup_days`` days old (UTC days) are not
   counted at all: their rows are purged (once a day, after a commit), and counting them could
   count them twice;
5. the verdicts of the batch's attributed conversions decided now (``conversion_verdicts``)
   and the order ids they counted (``conversion_orders``, whose key stops two aggregators
   counting one order: the later commit fails and its batch is decided again).

No per-event row or index is written: raw events live in the archive's columnar files. Works on
SQLite (3.35+) and PostgreSQL. Rows are written in key order so concurrent aggregators on
PostgreSQL take row locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import TypeVar

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adtrack.adapters.sql.tables import (
    CONVERSION_PIXEL_DIMENSIONS,
    DEVICE_KEY,
    DEVICE_LINE_ITEM_KEY,
    GEO_KEY,
    GEO_LINE_ITEM_KEY,
    ROLLUP_DIMENSIONS,
    ROLLUP_SUMS,
    conversion_orders,
    conversion_pixels,
    conversion_verdicts,
    eventlog_checkpoints,
    raw_event_files,
    rollup_conversion_pixel_daily,
    rollup_conversion_pixel_hourly,
    rollup_daily,
    rollup_device_daily,
    rollup_device_hourly,
    rollup_device_line_item_daily,
    rollup_device_line_item_hourly,
    rollup_device_line_item_monthly,
    rollup_geo_daily,
    rollup_geo_hourly,
    rollup_geo_line_item_daily,
    rollup_geo_line_item_hourly,
    rollup_geo_line_item_monthly,
    rollup_hourly,
    rollup_invalid_hourly,
    view_beacons_seen,
)
from adtrack.domain.epoch_hours import EPOCH
from adtrack.domain.rollup_counters import CONVERSION_PIXEL_SUMS, Counters, add_counters
from adtrack.services.ports import (
    ConversionCandidate,
    ConversionHistory,
    ConversionVerdicts,
    DeviceKey,
    GeoKey,
    PixelKey,
    PositionConflict,
    RawFile,
    RollupDelta,
    RollupKey,
    ViewKey,
    ViewRows,
)

__all__ = ["SqlRollupSink"]

_SQLITE_MAX_PARAMETERS = 32_766
_CHUNK = 500  # values per IN (...) list
_DAY_SECONDS = 86_400
# Where each kept sum of a conversion pixel row is in its Counters.
_PIXEL_SUM_INDEXES = tuple(Counters._fields.index(name) for name in CONVERSION_PIXEL_SUMS)
if PixelKey._fields[1:] != CONVERSION_PIXEL_DIMENSIONS:
    raise RuntimeError("PixelKey must hold the conversion pixel rollups' key, in its order")


class _Upsert:
    """A multi-row ``INSERT ... ON CONFLICT (key) DO UPDATE SET sum = sum + excluded.sum``.

    SQLite: one statement per page of rows, a VALUES list of bound parameters. PostgreSQL: one
    statement whatever the number of rows, one array parameter per column, ``unnest``-ed.
    """

    def __init__(
        self, engine: Engine, table: Table, key: Sequence[str], sums: Sequence[str]
    ) -> None:
        dialect = engine.dialect
        self._columns = (*key, *sums)
        self._time_bind: Callable[[object], object] | None = None
        quote = dialect.identifier_preparer.quote
        name = quote(table.name)
        head = f"INSERT INTO {name} ({', '.join(map(quote, self._columns))}) "
        tail = f" ON CONFLICT ({', '.join(map(quote, key))}) DO UPDATE SET " + ", ".join(
            f"{quote(s)} = {name}.{quote(s)} + excluded.{quote(s)}" for s in sums
        )
        if dialect.name == "postgresql":
            # %b: psycopg's binary array format (its text format quotes every element with a
            # regular expression: half the aggregator's SQL time on PostgreSQL)
            arrays = ", ".join(
                f"%b::{table.c[name].type.compile(dialect)}[]" for name in self._columns
            )
            self._postgres_sql: str | None = f"{head}SELECT * FROM unnest({arrays}){tail}"
        elif dialect.name == "sqlite":
            self._postgres_sql = None
            # The dialect's own text form of the time column, as SQLAlchemy binds it in queries.
            self._time_bind = table.c[key[0]].type.dialect_impl(dialect).bind_processor(dialect)
        else:  # pragma: no cover - configuration error
            raise ValueError(f"unsupported database {dialect.name!r}: use SQLite or PostgreSQL")
        self._head, self._tail = head, tail
        self._page = _SQLITE_MAX_PARAMETERS // len(self._columns)
        self._sqlite_sql: dict[int, str] = {}

    def execute(self, conn: Connection, rows: Sequence[tuple[object, ...]]) -> None:
        """Add ``rows`` (tuples in column order, keys unique, time first as a datetime)."""
        if not rows:
            return
        if self._postgres_sql is not None:
            columns = tuple(list(column) for column in zip(*rows, strict=True))
            conn.exec_driver_sql(self._postgres_sql, columns)
            return
        bind = self._time_bind
        bound: dict[object, object] = {}  # a batch's rows fall in a few hours
        for start in range(0, len(rows), self._page):
            page = rows[start : start + self._page]
            params: list[object] = []
            for row in page:
                when = row[0]
                value = bound.get(when)
                if value is None:
                    value = bound[when] = bind(when) if bind is not None else when
                params.append(value)
                params.extend(row[1:])
            conn.exec_driver_sql(self._values_sql(len(page)), tuple(params))

    def _values_sql(self, rows: int) -> str:
        sql = self._sqlite_sql.get(rows)
        if sql is None:
            one = "(" + ", ".join("?" * len(self._columns)) + ")"
            sql = self._sqlite_sql[rows] = (
                f"{self._head}VALUES {', '.join([one] * rows)}{self._tail}"
            )
        return sql


class SqlRollupSink:
    """Writes batches of decoded events to the reporting tables of ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        view_dedup_days: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._view_dedup_days = view_dedup_days  # ADTRACK_VIEW_DEDUP_DAYS
        self._clock = clock
        self._purged_day = -1  # the UTC day (epoch days) of the last purge of counted views
        self._hourly = _Upsert(engine, rollup_hourly, ("hour", *ROLLUP_DIMENSIONS), ROLLUP_SUMS)
        self._daily = _Upsert(engine, rollup_daily, ("day", *ROLLUP_DIMENSIONS), ROLLUP_SUMS)
        # Each audience key of the delta (GeoKey, DeviceKey) goes to its line-item tables and,
        # summed without advertiser and line item, to its network tables (line items also
        # monthly).
        self._geo = [
            _AudienceLevel.of(engine, GeoKey._fields, key, hourly, daily, monthly)
            for key, hourly, daily, monthly in (
                (
                    GEO_LINE_ITEM_KEY,
                    rollup_geo_line_item_hourly,
                    rollup_geo_line_item_daily,
                    rollup_geo_line_item_monthly,
                ),
                (GEO_KEY, rollup_geo_hourly, rollup_geo_daily, None),
            )
        ]
        self._devices = [
            _AudienceLevel.of(engine, DeviceKey._fields, key, hourly, daily, monthly)
            for key, hourly, daily, monthly in (
                (
                    DEVICE_LINE_ITEM_KEY,
                    rollup_device_line_item_hourly,
                    rollup_device_line_item_daily,
                    rollup_device_line_item_monthly,
                ),
                (DEVICE_KEY, rollup_device_hourly, rollup_device_daily, None),
            )
        ]
        self._pixel_hourly = _Upsert(
            engine,
            rollup_conversion_pixel_hourly,
            ("hour", *CONVERSION_PIXEL_DIMENSIONS),
            CONVERSION_PIXEL_SUMS,
        )
        self._pixel_daily = _Upsert(
            engine,
            rollup_conversion_pixel_daily,
            ("day", *CONVERSION_PIXEL_DIMENSIONS),
            CONVERSION_PIXEL_SUMS,
        )
        self._invalid = _Upsert(
            engine,
            rollup_invalid_hourly,
            ("hour", "imp_type", "tracker_id", "reason"),
            ("count",),
        )
        c = eventlog_checkpoints.c
        self._advance = (
            update(eventlog_checkpoints)
            .where(c.source == bindparam("s"), c.position == bindparam("start"))
            .values(position=bindparam("end"), updated_at=bindparam("now"))
        )
        dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._first_position = (
            dialect_insert(eventlog_checkpoints)
            .on_conflict_do_nothing()
            .returning(eventlog_checkpoints.c.source)  # rowcount is not reliable here on psycopg
        )
        seen = view_beacons_seen.c
        self._see_views = (
            dialect_insert(view_beacons_seen)
            .on_conflict_do_nothing()
            .returning(seen.impression_event_id, seen.view_state)  # the ones new
        )

    def load_checkpoints(self) -> dict[str, int]:
        """The committed positions (source -> position after the last committed batch)."""
        query = select(eventlog_checkpoints.c.source, eventlog_checkpoints.c.position)
        with self._engine.connect() as conn:
            return {source: int(position) for source, position in conn.execute(query)}

    def forget_checkpoints(self, sources: Sequence[str]) -> None:
        """Drop positions of sources that no longer exist (pruned segments)."""
        if not sources:
            return
        with self._engine.begin() as conn:
            conn.execute(
                delete(eventlog_checkpoints).where(eventlog_checkpoints.c.source.in_(sources))
            )

    def write(
        self,
        delta: RollupDelta,
        *,
        starts: Mapping[str, int],
        positions: Mapping[str, int] | None,
        raw_files: Sequence[RawFile] = (),
        conversions: ConversionVerdicts | None = None,
    ) -> None:
        """Commit a batch: positions (compare-and-set from ``starts``), its rollup ``delta``,
        the archive files that hold its raw events and its new conversion verdicts,
        atomically. ``positions`` None: a reader that keeps no positions (at-least-once).
        Raises :class:`PositionConflict`."""
        with self._engine.begin() as conn:
            if positions:
                self._advance_positions(conn, starts, positions)
            self._add_rollups(conn, delta)
            if raw_files:
                self._register_files(conn, raw_files)
            if conversions is not None and conversions.new:
                self._keep_verdicts(conn, conversions)

        if delta.views:
            self._purge_counted_views()

    def conversion_history(self, candidates: Sequence[ConversionCandidate]) -> ConversionHistory:
        v, o, p = conversion_verdicts.c, conversion_orders.c, conversion_pixels.c
        event_ids = sorted({c.event_id for c in candidates})
        pixels = sorted({c.conversion_pixel_id for c in candidates})
        orders = sorted({(c.conversion_pixel_id, c.order_id) for c in candidates if c.order_id})
        clicks = sorted(
            {(c.conversion_pixel_id, c.source_event_id) for c in candidates if c.source_event_id}
        )
        verdicts: dict[str, str | None] = {}
        min_minutes: dict[int, int | None] = {}
        claimed: dict[tuple[int, str], str] = {}
        counted: dict[tuple[int, str], list[tuple[int, str]]] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(event_ids):
                query = select(v.event_id, v.reason).where(v.event_id.in_(chunk))
                verdicts.update((row.event_id, row.reason) for row in conn.execute(query))
            for chunk in _chunks(pixels):
                query = select(p.id, p.min_minutes_per_conversion).where(p.id.in_(chunk))
                min_minutes.update((int(row[0]), row[1]) for row in conn.execute(query))
            for pixel, order_ids in _grouped(orders).items():
                for chunk in _chunks(order_ids):
                    query = select(o.order_id, o.event_id).where(
                        o.conversion_pixel_id == pixel, o.order_id.in_(chunk)
                    )
                    claimed.update(((pixel, row[0]), row[1]) for row in conn.execute(query))
            for pixel, click_ids in _grouped(clicks).items():
                for chunk in _chunks(click_ids):
                    query = select(v.source_event_id, v.ts, v.event_id).where(
                        v.conversion_pixel_id == pixel,
                        v.source_event_id.in_(chunk),
                        v.reason.is_(None),
                    )
                    for row in conn.execute(query):
                        counted.setdefault((pixel, row[0]), []).append((int(row[1]), row[2]))
        return ConversionHistory(verdicts, min_minutes, claimed, counted)

    def _keep_verdicts(self, conn: Connection, conversions: ConversionVerdicts) -> None:
        reasons = conversions.reasons
        conn.execute(
            insert(conversion_verdicts),
            [
                {
                    "event_id": c.event_id,
                    "conversion_pixel_id": c.conversion_pixel_id,
                    "source_event_id": c.source_event_id,
                    "ts": c.ts,
                    "reason": reasons[c.event_id],
                }
                for c in conversions.new
            ],
        )
        orders = [
            {
                "conversion_pixel_id": c.conversion_pixel_id,
                "order_id": c.order_id,
                "event_id": c.event_id,
            }
            for c in conversions.new
            if c.order_id is not None and reasons[c.event_id] is None
        ]
        if orders:
            conn.execute(insert(conversion_orders), orders)

    def add_rollups(self, delta: RollupDelta) -> None:
        """Add a precomputed delta without positions or raw events (bulk loads, benchmarks)."""
        with self._engine.begin() as conn:
            self._add_rollups(conn, delta)

    def add_rollups_in(self, conn: Connection, delta: RollupDelta) -> None:
        """Add a delta within the caller's transaction (imported report history, which records
        its import in the same transaction). Negative counters take a delta out again."""
        self._add_rollups(conn, delta)

    def _advance_positions(
        self, conn: Connection, starts: Mapping[str, int], positions: Mapping[str, int]
    ) -> None:
        now = datetime.now(UTC)
        for source, end in sorted(positions.items()):
            start = starts.get(source, 0)
            moved = conn.execute(
                self._advance, {"s": source, "start": start, "end": end, "now": now}
            ).rowcount
            if moved == 1:
                continue
            if start == 0 and self._insert_new_source(conn, source, end, now):
                continue
            raise PositionConflict(f"{source}: the committed position is no longer {start}")

    def _insert_new_source(self, conn: Connection, source: str, end: int, now: datetime) -> bool:
        """Insert the first position of ``source``; False if a row exists already (committed
        by someone else, possibly a moment ago)."""
        values = {"source": source, "position": end, "updated_at": now}
        return conn.execute(self._first_position, values).first() is not None

    def _oldest_counted_day(self) -> int:
        """The first UTC day (epoch days) whose impressions' views are still counted."""
        return int(self._clock() // _DAY_SECONDS) - self._view_dedup_days

    def _count_views_once(
        self, conn: Connection, views: Mapping[ViewKey, ViewRows]
    ) -> list[ViewKey]:
        """Record the views not counted before and return them (in key order: concurrent
        aggregators on PostgreSQL lock the same rows in the same order)."""
        oldest = self._oldest_counted_day()
        seen = [
            {
                "impression_event_id": view.impression_event_id,
                "view_state": view.view_state,
                "impression_day": keys.rollup.hour // 24,
            }
            for view, keys in sorted(views.items())
            if keys.rollup.hour // 24 >= oldest
        ]
        if not seen:
            return []
        return [ViewKey(*row) for row in conn.execute(self._see_views, seen)]

    def _purge_counted_views(self) -> None:
        """Forget the views of impressions too old to be counted (at most once a day)."""
        oldest = self._oldest_counted_day()
        if oldest == self._purged_day:
            return
        with self._engine.begin() as conn:
            conn.execute(
                delete(view_beacons_seen).where(view_beacons_seen.c.impression_day < oldest)
            )
        self._purged_day = oldest

    def _add_rollups(self, conn: Connection, delta: RollupDelta) -> None:
        hours: dict[int, datetime] = {}
        rows, geo, devices = delta.rows, delta.geo, delta.devices
        if delta.views:
            rows, geo, devices = delta.counted_views(self._count_views_once(conn, delta.views))

        def hour(index: int) -> datetime:
            value = hours.get(index)
            if value is None:
                value = hours[index] = EPOCH + timedelta(hours=index)
            return value

        if rows:
            self._hourly.execute(
                conn,
                [(hour(key.hour), *key[1:], *counts) for key, counts in sorted(rows.items())],
            )
            self._daily.execute(
                conn,
                [
                    (EPOCH + timedelta(days=key.hour), *key[1:], *counts)
                    for key, counts in sorted(_by_day(rows).items())
                ],
            )
        for level in self._geo if geo else ():
            level.add(conn, geo, hour)
        for level in self._devices if devices else ():
            level.add(conn, devices, hour)
        if delta.pixels:
            self._add_pixels(conn, delta.pixels, hour)
        if delta.invalid:
            self._invalid.execute(
                conn,
                [(hour(key.hour), *key[1:], count) for key, count in sorted(delta.invalid.items())],
            )

    def _add_pixels(
        self,
        conn: Connection,
        pixels: Mapping[PixelKey, Counters],
        hour: Callable[[int], datetime],
    ) -> None:
        """The conversion pixel rollups, hourly and daily: the conversion counters only."""
        hours: dict[PixelKey, tuple[int, ...]] = {}
        days: dict[PixelKey, tuple[int, ...]] = {}
        for key, counts in pixels.items():
            kept = tuple([counts[i] for i in _PIXEL_SUM_INDEXES])
            for into, at in ((hours, key), (days, key._replace(hour=key.hour // 24))):
                total = into.get(at)
                if total is not None:
                    kept_sum = tuple([a + b for a, b in zip(total, kept, strict=True)])
                    into[at] = kept_sum
                else:
                    into[at] = kept
        self._pixel_hourly.execute(
            conn, [(hour(k.hour), *k[1:], *c) for k, c in sorted(hours.items())]
        )
        self._pixel_daily.execute(
            conn,
            [(EPOCH + timedelta(days=k.hour), *k[1:], *c) for k, c in sorted(days.items())],
        )

    def _register_files(self, conn: Connection, files: Sequence[RawFile]) -> None:
        now = datetime.now(UTC)
        conn.execute(
            insert(raw_event_files),
            [
                {
                    "path": f.path,
                    "hour": EPOCH + timedelta(hours=f.hour),
                    "rows": f.rows,
                    "clicks": f.clicks,
                    "bytes": f.bytes,
                    "created_at": now,
                }
                for f in files
            ],
        )


def _chunks(values: Sequence[str] | Sequence[int]) -> list[Sequence[object]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]


def _grouped(pairs: Sequence[tuple[int, str]]) -> dict[int, list[str]]:
    """Pairs (pixel, text) as each pixel's texts."""
    out: dict[int, list[str]] = {}
    for pixel, text in pairs:
        out.setdefault(pixel, []).append(text)
    return out


# An audience rollup key as the sink handles it: the epoch hour (or day) first, then ids and
# texts.
_AudienceKey = tuple[int | str, ...]


@dataclass(frozen=True)
class _AudienceLevel:
    """One level of an audience family: which fields of the delta's key it keeps (the time
    first), and its hourly, daily and (if it has one) monthly tables."""

    kept: tuple[int, ...]
    hourly: _Upsert
    daily: _Upsert
    monthly: _Upsert | None

    @classmethod
    def of(
        cls,
        engine: Engine,
        delta_fields: Sequence[str],
        key: Sequence[str],
        hourly: Table,
        daily: Table,
        monthly: Table | None,
    ) -> _AudienceLevel:
        kept = (0, *(delta_fields.index(column) for column in key))
        return cls(
            kept,
            _Upsert(engine, hourly, ("hour", *key), ROLLUP_SUMS),
            _Upsert(engine, daily, ("day", *key), ROLLUP_SUMS),
            None if monthly is None else _Upsert(engine, monthly, ("month", *key), ROLLUP_SUMS),
        )

    def add(
        self,
        conn: Connection,
        rows: Mapping[GeoKey, Counters] | Mapping[DeviceKey, Counters],
        hour: Callable[[int], datetime],
    ) -> None:
        """Add ``rows`` (keyed by epoch hour) summed to this level, hourly, daily and monthly."""
        hours = _summed(rows.items(), itemgetter(*self.kept))
        days = _summed(hours.items(), _day_of_hour)
        self.hourly.execute(conn, [(hour(int(k[0])), *k[1:], *c) for k, c in sorted(hours.items())])
        self.daily.execute(
            conn,
            [(EPOCH + timedelta(days=int(k[0])), *k[1:], *c) for k, c in sorted(days.items())],
        )
        if self.monthly is not None:
            self.monthly.execute(conn, _by_month(days))


_K = TypeVar("_K")
_L = TypeVar("_L", bound=Hashable)


def _summed(items: Iterable[tuple[_K, Counters]], key_of: Callable[[_K], _L]) -> dict[_L, Counters]:
    """The counters of ``items`` added up per ``key_of(key)``."""
    out: dict[_L, Counters] = {}
    for key, counts in items:
        add_counters(out, key_of(key), counts)
    return out


def _day_of_hour(key: _AudienceKey) -> _AudienceKey:
    return (int(key[0]) // 24, *key[1:])


def _by_month(days: Mapping[_AudienceKey, Counters]) -> list[tuple[object, ...]]:
    """The daily rows (keyed by epoch day) summed per UTC month, as rows of the monthly table
    (the first of the month, 00:00 UTC), in key order."""
    month_of: dict[int, datetime] = {}

    def month_key(key: _AudienceKey) -> tuple[datetime | int | str, ...]:
        day = int(key[0])
        month = month_of.get(day)
        if month is None:
            month = month_of[day] = (EPOCH + timedelta(days=day)).replace(day=1)
        return (month, *key[1:])

    return [(*k, *c) for k, c in sorted(_summed(days.items(), month_key).items())]


def _by_day(rows: Mapping[RollupKey, Counters]) -> dict[RollupKey, Counters]:
    """The hourly increments summed per UTC day (the key's ``hour`` holds the day index)."""
    return _summed(rows.items(), lambda key: key._replace(hour=key.hour // 24))
