"""Planning a report: its buckets, and which rollup rows make each of them. Pure: no database.

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
3. The whole days of a bucket are written the same way as a signed sum of whole UTC months
   (``month_terms``; the line-item audience rollups keep them) and days: March 1 to May 29 is
   ``March + April + May - May 30 - May 31``. The sum is unchanged in any time zone: a report
   by month in UTC reads one month per bucket; a New York month (from 05:00 UTC, 04:00 in
   summer) is ``UTC month + the next month's first hours - its own first hours``, as a New
   York day is read from a UTC day. Tables without a monthly level read the months as their
   days, what cancels left out (:func:`months_as_days`), which is the plan without months.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from adtrack.reporting.request import Interval, ReportRequest
from adtrack.reporting.time_grid import (
    DAY,
    HOUR,
    ceil_day,
    ceil_hour,
    ceil_month,
    floor_day,
    floor_month,
    local_midnight,
    next_month,
)
from adtrack.services.ports import Terms

__all__ = ["Bucket", "SourcePlan", "months_as_days", "plan_buckets", "plan_sources"]


@dataclass(frozen=True, slots=True)
class Bucket:
    label: datetime  # the nominal local start (local midnight for days, first of month...)
    utc_start: datetime  # whole UTC hour, inclusive
    utc_end: datetime  # whole UTC hour, exclusive


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


@dataclass
class SourcePlan:
    """Which UTC months, days and hours to read, and how each adds into the buckets."""

    month_terms: Terms = field(default_factory=dict)  # keyed by the first of the month
    day_terms: Terms = field(default_factory=dict)
    hour_terms: Terms = field(default_factory=dict)


# What a month's rows cost to read, in days' rows: a key seen in a month is seen on many of its
# days, so a month has more rows than a day but far fewer than thirty (docs/benchmarks.md).
MONTH_COST_IN_DAYS = 3


def _hours_between(a: datetime, b: datetime) -> int:
    return int((b - a) / HOUR)


def _days_between(a: datetime, b: datetime) -> int:
    return (b - a).days


def _months_between(a: datetime, b: datetime) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _add_span(
    terms: Terms, lo: datetime, hi: datetime, step: timedelta, index: int, sign: int
) -> None:
    """Add the steps (hours or days) of ``[lo, hi)`` with ``sign``; ``[hi, lo)`` negated when
    ``hi < lo``."""
    if hi < lo:
        lo, hi, sign = hi, lo, -sign
    at = lo
    while at < hi:
        terms.setdefault(at, []).append((index, sign))
        at += step


def _cheapest(
    a: datetime,
    b: datetime,
    floor: Callable[[datetime], datetime],
    ceil: Callable[[datetime], datetime],
    edge: Callable[[datetime, datetime], int],
    inner: Callable[[datetime, datetime], int],
    no_split: int,
) -> tuple[datetime, datetime] | None:
    """The coarse span ``[s, e)`` with ``s`` and ``e`` next to ``a`` and ``b`` that costs least
    (``edge`` counts the fine units between two points, ``inner`` the cost of the coarse span),
    or None when reading ``[a, b)`` in fine units only (``no_split``) is cheapest."""
    best: tuple[datetime, datetime] | None = None
    best_cost = no_split
    for s in {floor(a), ceil(a)}:
        for e in {floor(b), ceil(b)}:
            if e <= s:
                continue
            cost = abs(edge(a, s)) + abs(edge(b, e)) + inner(s, e)
            if cost < best_cost:
                best, best_cost = (s, e), cost
    return best


def plan_sources(buckets: Sequence[Bucket]) -> SourcePlan:
    """Write each bucket as a signed sum of UTC months, days and hours, reading the fewest
    rows.

    For a bucket ``[a, b)`` and whole days ``[ds, de)`` with ``ds`` and ``de`` next to ``a`` and
    ``b``: ``[a, b) = [ds, de) + [a, ds) + [de, b)`` where an interval running backwards counts
    negatively. The cost is one row per day plus one per hour; the cheapest choice wins (all
    hours when the bucket is too short to contain much of a day). The days ``[ds, de)`` are
    written the same way as whole UTC months and days, a month costing
    :data:`MONTH_COST_IN_DAYS`.
    """
    plan = SourcePlan()
    for index, bucket in enumerate(buckets):
        a, b = bucket.utc_start, bucket.utc_end
        days = _cheapest(
            a, b, floor_day, ceil_day, _hours_between, _days_between, _hours_between(a, b)
        )
        if days is None:
            _add_span(plan.hour_terms, a, b, HOUR, index, 1)
            continue
        ds, de = days
        months = _cheapest(
            ds,
            de,
            floor_month,
            ceil_month,
            _days_between,
            lambda s, e: MONTH_COST_IN_DAYS * _months_between(s, e),
            _days_between(ds, de),
        )
        if months is None:
            _add_span(plan.day_terms, ds, de, DAY, index, 1)
        else:
            ms, me = months
            month = ms
            while month < me:
                plan.month_terms.setdefault(month, []).append((index, 1))
                month = next_month(month)
            # before the first month: added, or taken off when the month starts earlier
            _add_span(plan.day_terms, ds, ms, DAY, index, 1)
            _add_span(plan.day_terms, me, de, DAY, index, 1)  # after the last (or taken off)
        _add_span(plan.hour_terms, a, ds, HOUR, index, 1)
        _add_span(plan.hour_terms, de, b, HOUR, index, 1)
    return plan


def months_as_days(month_terms: Terms, day_terms: Terms) -> Terms:
    """``day_terms`` plus every day of the months of ``month_terms``, what cancels left out
    (a new mapping): how the plan reads from tables that keep no months."""
    net: dict[datetime, dict[int, int]] = {}
    for day, terms in day_terms.items():
        for index, sign in terms:
            signs = net.setdefault(day, {})
            signs[index] = signs.get(index, 0) + sign
    for month, terms in month_terms.items():
        day, end = month, next_month(month)
        while day < end:
            signs = net.setdefault(day, {})
            for index, sign in terms:
                signs[index] = signs.get(index, 0) + sign
            day += DAY
    return {
        day: [(index, sign) for index, sign in sorted(signs.items()) if sign]
        for day, signs in sorted(net.items())
        if any(signs.values())
    }
