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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from adtrack.reporting.request import Interval, ReportRequest
from adtrack.reporting.time_grid import (
    DAY,
    HOUR,
    ceil_day,
    ceil_hour,
    floor_day,
    local_midnight,
)
from adtrack.services.ports import Terms

__all__ = ["Bucket", "SourcePlan", "plan_buckets", "plan_sources"]


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
