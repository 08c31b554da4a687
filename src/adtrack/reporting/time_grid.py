"""The time grid reports are kept on: whole UTC hours and days, and local midnights.

Rollups are kept per UTC hour (``rollup_hourly``) and per UTC day (``rollup_daily``), and the
line-item audience rollups also per UTC month, so every window a report reads is cut on this
grid; local midnights are where a report's days start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "DAY",
    "HOUR",
    "ceil_day",
    "ceil_hour",
    "ceil_month",
    "floor_day",
    "floor_hour",
    "floor_month",
    "local_midnight",
    "next_month",
]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


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


def floor_month(instant: datetime) -> datetime:
    return floor_day(instant).replace(day=1)


def next_month(month: datetime) -> datetime:
    """The first of the month after ``month`` (itself the first of a month)."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def ceil_month(instant: datetime) -> datetime:
    floored = floor_month(instant)
    return floored if floored == instant else next_month(floored)
