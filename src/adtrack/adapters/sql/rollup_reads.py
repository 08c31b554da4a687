"""The report engine's reads of the rollup tables (:class:`~adtrack.services.ports.RollupReads`).

SQL queries sum the counters per (UTC month, day or hour, grouped ids) -- money is summed as
integer micro-units in SQL -- and Python folds them into the report's buckets with the plan's
signs (``reporting/plan.py``). A report that groups or filters by an audience column (country;
device type, OS, browser) reads the audience rollups of that family instead, which have the
same shape with fewer key columns; one that groups or filters by conversion pixel reads the
conversion pixel rollups, which keep the conversion counters only (the others read as 0). Only
the line-item audience rollups keep months; elsewhere
the plan's months are read as their days. The shapes of the queries and the time keys they
select are tuned for both databases (docs/benchmarks.md): keep them when changing this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Engine,
    String,
    Table,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable

from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.rows import DriverTuple
from adtrack.domain.utc import as_utc
from adtrack.reporting.plan import months_as_days
from adtrack.reporting.time_grid import DAY, HOUR, floor_day, floor_hour, floor_month
from adtrack.services.ports import BucketSums, Terms

__all__ = ["SqlRollupReads"]

# The summed columns, in the order Counters holds them.
COUNTER_COLUMNS: tuple[str, ...] = t.ROLLUP_SUMS

# Where the names of each key column's ids come from (imp_type is labelled in code).
CATALOGUES: dict[str, Table] = {
    "advertiser_id": t.advertisers,
    "line_item_id": t.line_items,
    "publisher_id": t.publishers,
    "placement_id": t.placements,
    "payment_rule_id": t.payment_rules,
    "tracker_id": t.trackers,
    "conversion_pixel_id": t.conversion_pixels,
}
# A report that groups or filters by conversion pixel reads the conversion pixel rollups (only
# the conversion counters: the others read as 0, and the request allows none of them).
PIXEL_LEVELS = (None, t.rollup_conversion_pixel_daily, t.rollup_conversion_pixel_hourly)
# The audience rollups (monthly or None, daily, hourly) with their key columns, narrowest
# first: a report that groups or filters by an audience column reads the first whose key holds
# every column it uses; any other report reads rollup_daily / rollup_hourly (which alone hold
# imported history and the events counted before the audience rollups existed).
AUDIENCE_COLUMNS = frozenset((*t.GEO_DIMENSIONS, *t.DEVICE_DIMENSIONS))
_Levels = tuple[Table | None, Table, Table]
AUDIENCE_FAMILIES: tuple[tuple[frozenset[str], _Levels], ...] = (
    (frozenset(t.GEO_KEY), (None, t.rollup_geo_daily, t.rollup_geo_hourly)),
    (frozenset(t.DEVICE_KEY), (None, t.rollup_device_daily, t.rollup_device_hourly)),
    (
        frozenset(t.GEO_LINE_ITEM_KEY),
        (
            t.rollup_geo_line_item_monthly,
            t.rollup_geo_line_item_daily,
            t.rollup_geo_line_item_hourly,
        ),
    ),
    (
        frozenset(t.DEVICE_LINE_ITEM_KEY),
        (
            t.rollup_device_line_item_monthly,
            t.rollup_device_line_item_daily,
            t.rollup_device_line_item_hourly,
        ),
    ),
)
# Ids per ``IN`` list when reading names (below SQLite's bound-parameter limit).
NAMES_CHUNK = 900


class SqlRollupReads:
    """The rollup sums and catalogue names, read from ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def bucket_sums(
        self,
        month_terms: Terms,
        day_terms: Terms,
        hour_terms: Terms,
        group_by: Sequence[str],
        filters: Mapping[str, Sequence[int | str]],
    ) -> BucketSums:
        monthly, daily, hourly = _tables_for({*group_by, *filters})
        if monthly is None and month_terms:
            day_terms, month_terms = months_as_days(month_terms, day_terms), {}
        acc: BucketSums = {}
        with self._engine.connect() as conn:
            dialect = conn.dialect.name
            if monthly is not None:
                _read(
                    conn,
                    monthly,
                    "month",
                    month_terms,
                    _TimeKeys(month_terms, floor_month, dialect),
                    None,
                    group_by,
                    filters,
                    acc,
                )
            _read(
                conn,
                daily,
                "day",
                day_terms,
                _TimeKeys(day_terms, floor_day, dialect),
                DAY,
                group_by,
                filters,
                acc,
            )
            _read(
                conn,
                hourly,
                "hour",
                hour_terms,
                _TimeKeys(hour_terms, floor_hour, dialect),
                HOUR,
                group_by,
                filters,
                acc,
            )
        return acc

    def names(self, column: str, ids: Sequence[int]) -> dict[int, str]:
        catalogue = CATALOGUES[column]
        found: dict[int, str] = {}
        with self._engine.connect() as conn:
            for chunk_start in range(0, len(ids), NAMES_CHUNK):
                chunk = ids[chunk_start : chunk_start + NAMES_CHUNK]
                stmt = select(catalogue.c.id, catalogue.c.name).where(catalogue.c.id.in_(chunk))
                found.update({row[0]: row[1] for row in conn.execute(stmt)})
        return found


def _tables_for(columns: set[str]) -> _Levels:
    """The monthly (if any), daily and hourly rollups a report using ``columns`` reads."""
    if "conversion_pixel_id" in columns:
        if columns <= set(t.CONVERSION_PIXEL_DIMENSIONS):
            return PIXEL_LEVELS
        raise ValueError(f"no rollup table holds all of {sorted(columns)}")
    if not columns & AUDIENCE_COLUMNS:
        return None, t.rollup_daily, t.rollup_hourly
    for key, levels in AUDIENCE_FAMILIES:
        if columns <= key:
            return levels
    raise ValueError(f"no rollup table holds all of {sorted(columns)}")


# SQLite stores DateTime as text in this form (SQLAlchemy's SQLite DATETIME); the engine reads
# the time column as that text and looks it up directly, skipping a datetime per row.
_SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

# A row's time as selected: SQLite text, PostgreSQL epoch seconds, else the datetime.
TimeKey = str | int | datetime


def _time_key_sql(
    dialect: str, time_col: ColumnElement[datetime]
) -> ColumnElement[str] | ColumnElement[int] | ColumnElement[datetime]:
    """How a row's time is selected: a value that is cheap to fetch and to look up.

    SQLite: the stored text. PostgreSQL: epoch seconds; an aware ``datetime`` costs its
    construction and, as a dictionary key, a time-zone lookup per hash.
    """
    if dialect == "sqlite":
        return type_coerce(time_col, String)
    if dialect == "postgresql":
        return cast(extract("epoch", time_col), BigInteger)
    return time_col


def _time_key(dialect: str, when: datetime) -> TimeKey:
    """The value :func:`_time_key_sql` selects for the stored time ``when`` (UTC)."""
    if dialect == "sqlite":
        return when.strftime(_SQLITE_TIME_FORMAT)
    if dialect == "postgresql":
        return int(when.timestamp())
    return when


@dataclass
class _TimeKeys:
    """How rows' time values are matched to the plan's UTC days or hours."""

    terms: Terms
    floor: Callable[[datetime], datetime]
    dialect: str

    def __post_init__(self) -> None:
        self.lookup: dict[TimeKey, list[tuple[int, int]]] = dict(self.terms.items())
        self.lookup.update((_time_key(self.dialect, when), v) for when, v in self.terms.items())

    def contributions(self, raw: TimeKey | None) -> list[tuple[int, int]] | None:
        """The slow path for a value not in ``lookup`` (another text form, or a time that is
        not on the boundary); remembered in ``lookup``."""
        if raw is None:
            return None
        if isinstance(raw, str):
            when = datetime.fromisoformat(raw)
        elif isinstance(raw, int):
            when = datetime.fromtimestamp(raw, UTC)
        else:
            when = raw
        found = self.terms.get(self.floor(as_utc(when))) or []
        self.lookup[raw] = found
        return found


# Above this many distinct days/hours, scattered times are matched with ranges, not a list.
MAX_LISTED_TIMES = 5000


def _window(
    time_col: ColumnElement[datetime], ranges: list[tuple[datetime, datetime]], step: timedelta
) -> ColumnElement[bool]:
    """The SQL condition selecting the planned days or hours.

    One contiguous range is a range scan. Scattered edge hours (local days in a zone west or
    east of UTC) are listed with IN: both databases look each one up in the primary key,
    whereas an OR of many ranges makes SQLite scan the whole index.
    """
    if len(ranges) == 1:
        lo, hi = ranges[0]
        return and_(time_col >= lo, time_col < hi)
    points = []
    for lo, hi in ranges:
        at = lo
        while at < hi:
            points.append(at)
            at += step
    if len(points) <= MAX_LISTED_TIMES:
        return time_col.in_(points)
    return or_(*(and_(time_col >= lo, time_col < hi) for lo, hi in ranges))


# Up to this many buckets, a plan where every time adds to (or takes from) one bucket is grouped
# by bucket in SQL (a small CASE), so a cumulative or monthly report returns one row per group
# and bucket (and sign: the days a month's read takes off again).
MAX_CASE_BUCKETS = 16


def _bucket_case(
    time_col: ColumnElement[datetime], terms: Terms
) -> tuple[ColumnElement[int], list[tuple[int, int]]] | None:
    """``CASE WHEN t < b1 THEN 0 WHEN t < b2 THEN 1 ... END`` and the (bucket, sign) each
    value stands for, when the plan allows it."""
    if not all(len(c) == 1 for c in terms.values()):
        return None
    ordered = sorted(terms)
    contributions = [terms[at][0] for at in ordered]
    distinct = list(dict.fromkeys(contributions))
    if len(distinct) == len(ordered) or len(distinct) > MAX_CASE_BUCKETS:
        return None  # nothing to gain, or too many branches
    code = {contribution: i for i, contribution in enumerate(distinct)}
    # Buckets follow time order, so each change of bucket (or sign) is one boundary.
    whens: list[tuple[ColumnElement[bool], int]] = []
    previous = contributions[0]
    for at, contribution in zip(ordered, contributions, strict=True):
        if contribution != previous:
            whens.append((time_col < at, code[previous]))
            previous = contribution
    value = case(*whens, else_=code[previous]) if whens else literal(code[previous])
    return value, distinct


def _read(
    conn: Connection,
    table: Table,
    time_column: str,
    terms: Terms,
    keys: _TimeKeys,
    step: timedelta | None,
    group_by: Sequence[str],
    filters: Mapping[str, Sequence[int | str]],
    acc: BucketSums,
) -> None:
    """Sum ``table`` over the planned times (days or hours ``step`` apart, or months for
    None), grouped by time (or bucket) and the ``group_by`` columns, and add the sums into
    ``acc`` with the plan's signs."""
    if not terms:
        return
    time_col = table.c[time_column]
    window = (
        time_col.in_(sorted(terms))  # a few months
        if step is None
        else _window(time_col, _ranges(terms, step), step)
    )
    conditions: list[ColumnElement[bool]] = [window]
    for column, ids in filters.items():
        conditions.append(table.c[column].in_(ids))
    dim_cols = [table.c[column] for column in group_by]
    sums = _sums(conn.dialect.name, table)
    bucket = _bucket_case(time_col, terms)
    if bucket is not None:
        label = bucket[0].label("bucket")
        stmt = select(label, *dim_cols, *sums).where(*conditions).group_by(label, *dim_cols)
        _fold(_fetch_all(conn, stmt), _BucketKeys(bucket[1]), len(dim_cols), acc)
        return
    if step == HOUR:
        day_terms = _hours_by_day(terms)
        if day_terms is not None:
            # Edge hours of local days: all listed hours of a UTC day add to the same buckets,
            # so the database sums them per UTC day (fewer rows to return and fold).
            day = _utc_date(conn, time_col).label("utc_day")
            stmt = select(day, *dim_cols, *sums).where(*conditions).group_by(day, *dim_cols)
            _fold(_fetch_all(conn, stmt), _DayKeys(day_terms), len(dim_cols), acc)
            return
    selected_time = _time_key_sql(conn.dialect.name, time_col)
    stmt = select(selected_time, *dim_cols, *sums).where(*conditions).group_by(time_col, *dim_cols)
    _fold(_fetch_all(conn, stmt), keys, len(dim_cols), acc)


def _sums(dialect: str, table: Table) -> list[ColumnElement[int]]:
    """The summed counters, exact integers that raise on overflow rather than wrap or round.

    PostgreSQL: ``sum_bigint`` (migration 0002); ``sum(bigint)`` would keep a numeric running
    total per group, which makes a report's hash aggregate spill to disk. SQLite: ``sum()``,
    which adds integers exactly and raises "integer overflow".
    """
    aggregate = func.sum_bigint if dialect == "postgresql" else func.sum
    return [
        aggregate(table.c[c], type_=BigInteger).label(c)
        if c in table.c
        else cast(literal_column("0"), BigInteger).label(c)  # a counter the table lacks
        for c in COUNTER_COLUMNS
    ]


def _fetch_all(conn: Connection, stmt: Executable) -> list[DriverTuple]:
    """All rows as the driver returns them. The selected values are plain already (times as
    text on SQLite, sums cast to integers), and skipping the result layer's row objects keeps
    big reports cheap."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _hours_by_day(terms: Terms) -> dict[date, list[tuple[int, int]]] | None:
    """The contributions per UTC date when every listed hour of each date has the same ones
    (and at least one date has several hours, else there is nothing to gain); else None."""
    by_day: dict[date, list[tuple[int, int]]] = {}
    hours_per_day: dict[date, int] = {}
    for hour, contributions in terms.items():
        day = hour.date()
        known = by_day.setdefault(day, contributions)
        if sorted(known) != sorted(contributions):
            return None
        hours_per_day[day] = hours_per_day.get(day, 0) + 1
    return by_day if max(hours_per_day.values(), default=0) > 1 else None


def _utc_date(
    conn: Connection, time_col: ColumnElement[datetime]
) -> ColumnElement[date] | ColumnElement[str]:
    """The UTC calendar date of a stored timestamp, as SQL."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", time_col), Date)
    return func.substr(type_coerce(time_col, String), 1, 10)  # SQLite stores UTC text


class _DayKeys:
    """Rows grouped by UTC date (``date`` on PostgreSQL, ``"YYYY-MM-DD"`` on SQLite)."""

    def __init__(self, by_day: dict[date, list[tuple[int, int]]]) -> None:
        self.lookup: dict[date | str, list[tuple[int, int]]] = dict(by_day.items())
        self.lookup.update((day.isoformat(), value) for day, value in by_day.items())

    def contributions(self, raw: object) -> list[tuple[int, int]] | None:
        return None  # the lookup has every planned date


class _BucketKeys:
    """Rows already grouped by the codes of :func:`_bucket_case`: (bucket, sign) each."""

    def __init__(self, codes: list[tuple[int, int]]) -> None:
        self.lookup: dict[int, list[tuple[int, int]]] = {
            code: [contribution] for code, contribution in enumerate(codes)
        }

    def contributions(self, raw: object) -> list[tuple[int, int]] | None:
        return None  # the lookup has every code


def _fold(
    rows: Iterable[DriverTuple],
    keys: _TimeKeys | _BucketKeys | _DayKeys,
    width: int,
    acc: BucketSums,
) -> None:
    """Add rows ``(time, *dimension ids, *sums)`` into ``acc`` per (bucket, ids)."""
    # Keys and sums are tuples of ints: cheap to build and ignored by the garbage collector.
    # Everything here runs once per row, so the lookups are bound to locals.
    first_value = 1 + width
    lookup, resolve, acc_get = keys.lookup.get, keys.contributions, acc.get
    for row in rows:
        contributions = lookup(row[0])
        if contributions is None:
            contributions = resolve(row[0])
            if not contributions:
                continue
        key_dims = row[1:first_value]
        values = row[first_value:]
        for index, sign in contributions:
            key = (index, key_dims)
            slot = acc_get(key)
            if slot is None:
                acc[key] = values if sign > 0 else tuple([-v for v in values])
            elif sign > 0:
                acc[key] = tuple([a + b for a, b in zip(slot, values, strict=True)])
            else:
                acc[key] = tuple([a - b for a, b in zip(slot, values, strict=True)])


def _ranges(points: Iterable[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Sorted points merged into contiguous ``[lo, hi)`` ranges."""
    out: list[tuple[datetime, datetime]] = []
    for p in sorted(points):
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + step)
        else:
            out.append((p, p + step))
    return out
