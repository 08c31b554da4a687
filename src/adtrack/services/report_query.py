"""The report engine: tracked impressions, clicks, costs and revenue over the rollup tables.

How a report is computed
------------------------
1. The request's window ``[start, end)`` is read in the report timezone and cut into buckets
   (local hours, local days, local months, or one cumulative bucket). Every UTC hour belongs
   to the bucket that contains the local time at which that hour starts, so days of 23 or 25
   hours (DST changes) and repeated local hours are counted once and in the right place.
   Bucket edges are therefore whole UTC hours; in zones whose offset is not a whole number of
   hours (e.g. Asia/Kolkata) a local day starts at the first UTC hour that begins on it.
2. Each bucket's UTC window is written as a signed sum of whole UTC days (``rollup_daily``) and
   single UTC hours (``rollup_hourly``), choosing the decomposition that reads the fewest rows:
   a New York day is ``UTC day + its next 5 hours - its first 5 hours``; a UTC day is one daily
   row per key. Sums are integers, so subtracting is exact.
3. Two SQL queries sum the counters per (day or hour, grouped ids) -- money is summed as
   integer micro-units in SQL -- and Python folds them into the buckets.
4. Names come from the catalogue tables (soft-deleted rows keep theirs).

Money stays in integer micros in :class:`Counters`; formatting to decimal strings happens at the
edge (``report_formats.py``).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

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
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection

from adtrack.adapters.sql import tables as t
from adtrack.domain.errors import ValidationError
from adtrack.domain.model import ImpType
from adtrack.domain.parsing import parse_id_list, parse_local_datetime
from adtrack.domain.rollup_counters import Counters
from adtrack.domain.utc import as_utc

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# Longest windows a report may cover (protects the server from accidental huge reports).
MAX_REPORT_DAYS = 3660
MAX_HOURLY_REPORT_DAYS = 92


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    CUMULATIVE = "cumulative"


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str  # column in the rollup tables
    catalogue: Table | None  # where names come from (None: imp_type, labelled in code)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("imp_type", "imp_type", None),
        Dimension("advertiser", "advertiser_id", t.advertisers),
        Dimension("line_item", "line_item_id", t.line_items),
        Dimension("publisher", "publisher_id", t.publishers),
        Dimension("placement", "placement_id", t.placements),
        Dimension("payment_rule", "payment_rule_id", t.payment_rules),
        Dimension("tracker", "tracker_id", t.trackers),
    )
}

METRICS: tuple[str, ...] = (
    "imps",
    "clicks",
    "invalid_imps",
    "invalid_clicks",
    "ctr",
    "media_cost",
    "booked_revenue",
    "profit",
    "cpm",
)
MONEY_METRICS = frozenset({"media_cost", "booked_revenue", "profit", "cpm"})

# The summed columns, in the order Counters holds them.
COUNTER_COLUMNS: tuple[str, ...] = t.ROLLUP_SUMS

RELATIVE_RANGES = (
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "month_to_date",
    "last_month",
)


# ---------------------------------------------------------------------------------------------
# Request
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRequest:
    """A validated report request. ``start``/``end`` are aware datetimes (``end`` exclusive)."""

    start: datetime
    end: datetime
    interval: Interval = Interval.DAY
    timezone: str = "UTC"
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    metrics: tuple[str, ...] = METRICS

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _as_list(value: object) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``["a,b"]`` -> ``["a", "b"]`` (blanks dropped)."""
    if value is None:
        return []
    items: Iterable[object] = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        out.extend(part.strip() for part in str(item).split(",") if part.strip())
    return out


def parse_timezone(value: object, field_name: str = "timezone") -> ZoneInfo:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field_name, "must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(value.strip())
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for malformed keys
        raise ValidationError(field_name, f"unknown time zone {value!r}") from exc


def parse_instant(value: object, tz: ZoneInfo, field_name: str) -> datetime:
    """A date (local midnight) or a datetime (local unless it carries an offset), as aware,
    within the supported calendar (``domain/parsing.py``)."""
    return parse_local_datetime(value, field_name, tz=tz)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def relative_range(name: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``yesterday``, ``last_7_days``... as local ``[start, end)`` relative to ``now``."""
    today = now.astimezone(tz).date()
    first_of_month = today.replace(day=1)
    if name == "today":
        start, end = today, today + DAY
    elif name == "yesterday":
        start, end = today - DAY, today
    elif name == "last_7_days":
        start, end = today - 7 * DAY, today
    elif name == "last_30_days":
        start, end = today - 30 * DAY, today
    elif name == "month_to_date":
        start, end = first_of_month, today + DAY
    elif name == "last_month":
        start, end = (first_of_month - DAY).replace(day=1), first_of_month
    else:
        raise ValidationError("range", f"must be one of {', '.join(RELATIVE_RANGES)}")
    return local_midnight(start, tz), local_midnight(end, tz)


def parse_report_request(
    params: Mapping[str, Any],
    *,
    default_timezone: str = "UTC",
    now: datetime | None = None,
) -> ReportRequest:
    """Validate report parameters from the API, the CLI or a saved definition.

    Accepted keys: ``start``, ``end`` (or ``range``: one of :data:`RELATIVE_RANGES`),
    ``interval``, ``timezone``, ``group_by``, ``metrics``, and one filter per dimension named
    ``<dimension>_id`` (e.g. ``line_item_id``) holding ids as a list or a comma-separated text.
    Raises :class:`ValidationError` naming the offending field.
    """
    tz_value = params.get("timezone") or default_timezone
    tz = parse_timezone(tz_value)

    interval_value = params.get("interval") or Interval.DAY.value
    try:
        interval = Interval(str(interval_value).strip().lower())
    except ValueError as exc:
        raise ValidationError("interval", "must be one of hour, day, month, cumulative") from exc

    range_value = params.get("range")
    if range_value:
        if params.get("start") or params.get("end"):
            raise ValidationError("range", "give either range or start/end, not both")
        start, end = relative_range(str(range_value).strip(), now or datetime.now(UTC), tz)
    else:
        start = parse_instant(params.get("start"), tz, "start")
        end = parse_instant(params.get("end"), tz, "end")
    if end <= start:
        raise ValidationError("end", "must be after start")
    span = end - start
    if span > timedelta(days=MAX_REPORT_DAYS):
        raise ValidationError("end", f"a report covers at most {MAX_REPORT_DAYS} days")
    if interval is Interval.HOUR and span > timedelta(days=MAX_HOURLY_REPORT_DAYS):
        raise ValidationError(
            "interval", f"hourly reports cover at most {MAX_HOURLY_REPORT_DAYS} days"
        )

    group_by: list[str] = []
    for name in _as_list(params.get("group_by")):
        if name not in DIMENSIONS:
            raise ValidationError("group_by", f"unknown dimension {name!r}; use {_dim_names()}")
        if name not in group_by:
            group_by.append(name)

    filters: dict[str, tuple[int, ...]] = {}
    for name, dim in DIMENSIONS.items():
        # 0 is a valid key: "no placement" / "no payment rule" in the rollups.
        ids = parse_id_list(params.get(dim.column), dim.column, low=0)
        if ids:
            filters[name] = ids

    metrics_raw = _as_list(params.get("metrics"))
    for m in metrics_raw:
        if m not in METRICS:
            raise ValidationError("metrics", f"unknown metric {m!r}; use {', '.join(METRICS)}")
    metrics = tuple(m for m in METRICS if m in metrics_raw) if metrics_raw else METRICS

    return ReportRequest(
        start=start,
        end=end,
        interval=interval,
        timezone=tz.key,
        group_by=tuple(group_by),
        filters=filters,
        metrics=metrics,
    )


def _dim_names() -> str:
    return ", ".join(DIMENSIONS)


def request_to_params(request: ReportRequest) -> dict[str, Any]:
    """The inverse of :func:`parse_report_request` (JSON-friendly)."""
    params: dict[str, Any] = {
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "interval": request.interval.value,
        "timezone": request.timezone,
        "group_by": list(request.group_by),
        "metrics": list(request.metrics),
    }
    for name, ids in request.filters.items():
        params[DIMENSIONS[name].column] = list(ids)
    return params


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


# Result rows are NamedTuples rather than dataclasses (as Counters): tuples of plain values drop
# out of the garbage collector's bookkeeping, which matters when a report builds tens of
# thousands of rows.
class DimensionValue(NamedTuple):
    dimension: str
    id: int
    label: str | None  # the name (imp_type: "9 External Impression"); None if unknown / 0


class ReportRow(NamedTuple):
    interval_start: datetime  # aware, in the report timezone
    dimensions: tuple[DimensionValue, ...]
    counters: Counters


@dataclass(frozen=True)
class Report:
    request: ReportRequest
    rows: list[ReportRow]
    totals: Counters


def imp_type_label(imp_type: int) -> str | None:
    try:
        kind = ImpType(imp_type)
    except ValueError:
        return None
    return f"{kind.value} {kind.label}"


# ---------------------------------------------------------------------------------------------
# Planning: buckets and their decomposition into UTC days and hours
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    label: datetime  # the nominal local start (local midnight for days, first of month...)
    utc_start: datetime  # whole UTC hour, inclusive
    utc_end: datetime  # whole UTC hour, exclusive


def floor_hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)


def ceil_hour(instant: datetime) -> datetime:
    utc = instant.astimezone(UTC)
    floored = floor_hour(utc)
    return floored if floored == utc else floored + HOUR


def floor_day(instant: datetime) -> datetime:
    return instant.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(instant: datetime) -> datetime:
    floored = floor_day(instant)
    return floored if floored == instant else floored + DAY


def plan_buckets(request: ReportRequest) -> list[Bucket]:
    """The request's buckets, in time order, each a window of whole UTC hours."""
    tz = request.tz
    window_start, window_end = ceil_hour(request.start), ceil_hour(request.end)
    if window_end <= window_start:
        return []
    if request.interval is Interval.CUMULATIVE:
        return [Bucket(request.start.astimezone(tz), window_start, window_end)]
    if request.interval is Interval.HOUR:
        buckets = []
        hour = window_start
        while hour < window_end:
            buckets.append(Bucket(hour.astimezone(tz), hour, hour + HOUR))
            hour += HOUR
        return buckets

    def period_start(d: date) -> date:
        return d if request.interval is Interval.DAY else d.replace(day=1)

    def next_period(d: date) -> date:
        if request.interval is Interval.DAY:
            return d + DAY
        return (d.replace(day=28) + timedelta(days=4)).replace(day=1)

    buckets = []
    period = period_start(window_start.astimezone(tz).date())
    last_day = (window_end - HOUR).astimezone(tz).date()
    while period <= last_day:
        following = next_period(period)
        label = local_midnight(period, tz)
        lo = max(window_start, ceil_hour(label))
        hi = min(window_end, ceil_hour(local_midnight(following, tz)))
        if lo < hi:
            buckets.append(Bucket(label, lo, hi))
        period = following
    return buckets


Terms = dict[datetime, list[tuple[int, int]]]  # UTC day/hour -> [(bucket index, +1/-1)]


@dataclass
class SourcePlan:
    """Which UTC days and hours to read, and how each adds into the buckets."""

    day_terms: Terms = field(default_factory=dict)
    hour_terms: Terms = field(default_factory=dict)


def _hours_between(a: datetime, b: datetime) -> int:
    return int((b - a) / HOUR)


def _add_hours(terms: Terms, lo: datetime, hi: datetime, index: int, sign: int) -> None:
    hour = lo
    while hour < hi:
        terms.setdefault(hour, []).append((index, sign))
        hour += HOUR


def plan_sources(buckets: Sequence[Bucket]) -> SourcePlan:
    """Write each bucket as a signed sum of UTC days and UTC hours, reading the fewest rows.

    For a bucket ``[a, b)`` and whole days ``[ds, de)`` with ``ds`` and ``de`` next to ``a`` and
    ``b``: ``[a, b) = [ds, de) + [a, ds) + [de, b)`` where an interval running backwards counts
    negatively. The cost is one row per day plus one per hour; the cheapest choice wins (all
    hours when the bucket is too short to contain much of a day).
    """
    plan = SourcePlan()
    for index, bucket in enumerate(buckets):
        a, b = bucket.utc_start, bucket.utc_end
        best: tuple[int, datetime, datetime] | None = None
        best_cost = _hours_between(a, b)
        for ds in {floor_day(a), ceil_day(a)}:
            for de in {floor_day(b), ceil_day(b)}:
                if de <= ds:
                    continue
                cost = abs(_hours_between(a, ds)) + abs(_hours_between(b, de)) + (de - ds).days
                if cost < best_cost:
                    best, best_cost = (cost, ds, de), cost
        if best is None:
            _add_hours(plan.hour_terms, a, b, index, 1)
            continue
        _, ds, de = best
        day = ds
        while day < de:
            plan.day_terms.setdefault(day, []).append((index, 1))
            day += DAY
        if a < ds:
            _add_hours(plan.hour_terms, a, ds, index, 1)
        elif a > ds:
            _add_hours(plan.hour_terms, ds, a, index, -1)
        if b > de:
            _add_hours(plan.hour_terms, de, b, index, 1)
        elif b < de:
            _add_hours(plan.hour_terms, b, de, index, -1)
    return plan


def _ranges(points: Iterable[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Sorted points merged into contiguous ``[lo, hi)`` ranges."""
    out: list[tuple[datetime, datetime]] = []
    for p in sorted(points):
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + step)
        else:
            out.append((p, p + step))
    return out


# ---------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------


# SQLite stores DateTime as text in this form (SQLAlchemy's SQLite DATETIME); the engine reads
# the time column as that text and looks it up directly, skipping a datetime per row.
_SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _time_key_sql(dialect: str, time_col: ColumnElement[datetime]) -> ColumnElement[Any]:
    """How a row's time is selected: a value that is cheap to fetch and to look up.

    SQLite: the stored text. PostgreSQL: epoch seconds; an aware ``datetime`` costs its
    construction and, as a dictionary key, a time-zone lookup per hash.
    """
    if dialect == "sqlite":
        return type_coerce(time_col, String)
    if dialect == "postgresql":
        return cast(extract("epoch", time_col), BigInteger)
    return time_col


def _time_key(dialect: str, when: datetime) -> Any:
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
        self.lookup: dict[Any, list[tuple[int, int]]] = dict(self.terms)
        self.lookup.update((_time_key(self.dialect, when), v) for when, v in self.terms.items())

    def contributions(self, raw: Any) -> list[tuple[int, int]] | None:
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


# Up to this many buckets, a plan where every time adds to one bucket is grouped by bucket in
# SQL (a small CASE), so a cumulative or monthly report returns one row per group and bucket.
MAX_CASE_BUCKETS = 16


def _bucket_case(time_col: ColumnElement[datetime], terms: Terms) -> ColumnElement[int] | None:
    """``CASE WHEN t < b1 THEN 0 WHEN t < b2 THEN 1 ... END`` when the plan allows it."""
    if not all(len(c) == 1 and c[0][1] == 1 for c in terms.values()):
        return None
    ordered = sorted(terms)
    indexes = [terms[at][0][0] for at in ordered]
    distinct = len(set(indexes))
    if distinct == len(ordered) or distinct > MAX_CASE_BUCKETS:
        return None  # nothing to gain, or too many branches
    # Buckets follow time order, so each change of bucket is one boundary.
    whens: list[tuple[ColumnElement[bool], int]] = []
    previous = indexes[0]
    for at, index in zip(ordered, indexes, strict=True):
        if index != previous:
            whens.append((time_col < at, previous))
            previous = index
    return case(*whens, else_=previous) if whens else literal(previous)


def _read(
    conn: Connection,
    table: Table,
    time_column: str,
    terms: Terms,
    keys: _TimeKeys,
    step: timedelta,
    dims: Sequence[Dimension],
    filters: Mapping[str, tuple[int, ...]],
    acc: dict[tuple[int, tuple[int, ...]], tuple[int, ...]],
) -> None:
    """Sum ``table`` over the planned times, grouped by time (or bucket) and ``dims``, and
    add the sums into ``acc`` with the plan's signs."""
    ranges = _ranges(terms, step)
    if not ranges:
        return
    time_col = table.c[time_column]
    conditions: list[ColumnElement[bool]] = [_window(time_col, ranges, step)]
    for name, ids in filters.items():
        conditions.append(table.c[DIMENSIONS[name].column].in_(ids))
    dim_cols = [table.c[d.column] for d in dims]
    sums = _sums(conn.dialect.name, table)
    bucket = _bucket_case(time_col, terms)
    if bucket is not None:
        label = bucket.label("bucket")
        stmt = select(label, *dim_cols, *sums).where(*conditions).group_by(label, *dim_cols)
        _fold(_fetch_all(conn, stmt), _BucketKeys(), len(dims), acc)
        return
    if step == HOUR:
        day_terms = _hours_by_day(terms)
        if day_terms is not None:
            # Edge hours of local days: all listed hours of a UTC day add to the same buckets,
            # so the database sums them per UTC day (fewer rows to return and fold).
            day = _utc_date(conn, time_col).label("utc_day")
            stmt = select(day, *dim_cols, *sums).where(*conditions).group_by(day, *dim_cols)
            _fold(_fetch_all(conn, stmt), _DayKeys(day_terms), len(dims), acc)
            return
    selected_time = _time_key_sql(conn.dialect.name, time_col)
    stmt = select(selected_time, *dim_cols, *sums).where(*conditions).group_by(time_col, *dim_cols)
    _fold(_fetch_all(conn, stmt), keys, len(dims), acc)


def _sums(dialect: str, table: Table) -> list[ColumnElement[int]]:
    """The summed counters, exact integers that raise on overflow rather than wrap or round.

    PostgreSQL: ``sum_bigint`` (migration 0002); ``sum(bigint)`` would keep a numeric running
    total per group, which makes a report's hash aggregate spill to disk. SQLite: ``sum()``,
    which adds integers exactly and raises "integer overflow".
    """
    aggregate = func.sum_bigint if dialect == "postgresql" else func.sum
    return [aggregate(table.c[c], type_=BigInteger).label(c) for c in COUNTER_COLUMNS]


def _fetch_all(conn: Connection, stmt: Any) -> list[tuple[Any, ...]]:
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


def _utc_date(conn: Connection, time_col: ColumnElement[datetime]) -> ColumnElement[Any]:
    """The UTC calendar date of a stored timestamp, as SQL."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", time_col), Date)
    return func.substr(type_coerce(time_col, String), 1, 10)  # SQLite stores UTC text


class _DayKeys:
    """Rows grouped by UTC date (``date`` on PostgreSQL, ``"YYYY-MM-DD"`` on SQLite)."""

    def __init__(self, by_day: dict[date, list[tuple[int, int]]]) -> None:
        self.lookup: dict[Any, list[tuple[int, int]]] = dict(by_day)
        self.lookup.update((day.isoformat(), value) for day, value in by_day.items())

    def contributions(self, raw: Any) -> list[tuple[int, int]] | None:
        return None  # the lookup has every planned date


class _BucketKeys:
    """Rows already grouped by bucket index (see :func:`_bucket_case`)."""

    def __init__(self) -> None:
        self.lookup: dict[Any, list[tuple[int, int]]] = {}

    def contributions(self, raw: Any) -> list[tuple[int, int]]:
        found = self.lookup[raw] = [(int(raw), 1)]
        return found


def _fold(
    rows: Iterable[tuple[Any, ...]],
    keys: _TimeKeys | _BucketKeys | _DayKeys,
    width: int,
    acc: dict[tuple[int, tuple[int, ...]], tuple[int, ...]],
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


def load_names(
    conn: Connection, dims: Sequence[Dimension], ids_by_dim: Mapping[str, set[int]]
) -> dict[str, dict[int, str]]:
    """Names for ids from the catalogue tables, soft-deleted rows included."""
    names: dict[str, dict[int, str]] = {}
    for dim in dims:
        ids = sorted(i for i in ids_by_dim.get(dim.name, set()) if i)
        found: dict[int, str] = {}
        if dim.catalogue is None:
            for i in ids:
                label = imp_type_label(i)
                if label:
                    found[i] = label
        else:
            for chunk_start in range(0, len(ids), 900):
                chunk = ids[chunk_start : chunk_start + 900]
                stmt = select(dim.catalogue.c.id, dim.catalogue.c.name).where(
                    dim.catalogue.c.id.in_(chunk)
                )
                found.update({row[0]: row[1] for row in conn.execute(stmt)})
        names[dim.name] = found
    return names


def run_report(engine: Engine | Connection, request: ReportRequest) -> Report:
    """Run ``request`` against the rollup tables."""
    if isinstance(engine, Connection):
        return _run(engine, request)
    with engine.connect() as conn:
        return _run(conn, request)


# ``tuple.__new__`` with a NamedTuple class builds an instance from a tuple of its fields without
# the Python-level ``__new__`` a NamedTuple call goes through (the fields are known to fit).
_new_report_row = typing.cast(
    Callable[[tuple[datetime, tuple[DimensionValue, ...], Counters]], ReportRow],
    partial(tuple.__new__, ReportRow),
)
_new_counters = typing.cast(Callable[[tuple[int, ...]], Counters], partial(tuple.__new__, Counters))


def _run(conn: Connection, request: ReportRequest) -> Report:
    dims = [DIMENSIONS[name] for name in request.group_by]
    buckets = plan_buckets(request)
    plan = plan_sources(buckets)
    dialect = conn.dialect.name
    acc: dict[tuple[int, tuple[int, ...]], tuple[int, ...]] = {}
    _read(
        conn,
        t.rollup_daily,
        "day",
        plan.day_terms,
        _TimeKeys(plan.day_terms, floor_day, dialect),
        DAY,
        dims,
        request.filters,
        acc,
    )
    _read(
        conn,
        t.rollup_hourly,
        "hour",
        plan.hour_terms,
        _TimeKeys(plan.hour_terms, floor_hour, dialect),
        HOUR,
        dims,
        request.filters,
        acc,
    )

    # Drop groups that are only a difference of days and hours netting to nothing: a group
    # with any event has a positive count.
    zero = (0,) * len(COUNTER_COLUMNS)
    kept = sorted(key for key, values in acc.items() if values != zero)
    names = load_names(
        conn,
        dims,
        {dim.name: {key[1][i] for key in kept} for i, dim in enumerate(dims)},
    )
    name_maps = [(dim.name, names[dim.name]) for dim in dims]
    # Rows are built column by column with C-level constructors, and rows with the same ids
    # share one tuple of dimension values: a report has tens of thousands of rows but only as
    # many distinct id combinations as there are groups.
    dimension_values = {
        key_dims: tuple(
            DimensionValue(name, value, found.get(value))
            for (name, found), value in zip(name_maps, key_dims, strict=True)
        )
        for key_dims in {key[1] for key in kept}
    }
    labels = [bucket.label for bucket in buckets]
    rows = list(
        map(
            _new_report_row,
            zip(
                [labels[index] for index, _ in kept],
                [dimension_values[key_dims] for _, key_dims in kept],
                map(_new_counters, map(acc.__getitem__, kept)),
                strict=True,
            ),
        )
    )
    totals = [sum(column) for column in zip(*acc.values(), strict=True)] if acc else list(zero)
    return Report(request=request, rows=rows, totals=Counters.of(totals))


# ---------------------------------------------------------------------------------------------
# Daily rollup maintenance helpers
# ---------------------------------------------------------------------------------------------


def utc_day(hour: datetime) -> datetime:
    """The ``rollup_daily.day`` key for an hourly rollup key (UTC midnight, aware)."""
    return floor_day(as_utc(hour))


def rebuild_daily_rollups(conn: Connection, start_day: datetime, end_day: datetime) -> int:
    """Recompute ``rollup_daily`` for UTC days ``[start_day, end_day)`` from ``rollup_hourly``.

    For back-fills and repairs (the aggregator keeps the daily table current as it writes).
    Runs in the caller's transaction; returns the number of daily rows written.
    """
    lo, hi = utc_day(start_day), utc_day(end_day)
    h, d = t.rollup_hourly, t.rollup_daily
    key_cols = [c for c in h.primary_key.columns if c.name != "hour"]
    conn.execute(d.delete().where(d.c.day >= lo, d.c.day < hi))
    stmt = (
        select(h.c.hour, *key_cols, *(h.c[c] for c in COUNTER_COLUMNS))
        .where(h.c.hour >= lo, h.c.hour < hi)
        .order_by(h.c.hour)
    )
    sums: dict[tuple[Any, ...], list[int]] = {}
    for row in conn.execute(stmt):
        key = (utc_day(row[0]), *row[1 : 1 + len(key_cols)])
        values = row[1 + len(key_cols) :]
        slot = sums.get(key)
        if slot is None:
            sums[key] = list(values)
        else:
            for i, v in enumerate(values):
                slot[i] += v
    names = ["day", *(c.name for c in key_cols), *COUNTER_COLUMNS]
    batch = [dict(zip(names, (*key, *values), strict=True)) for key, values in sums.items()]
    for i in range(0, len(batch), 5000):
        conn.execute(d.insert(), batch[i : i + 5000])
    return len(batch)
