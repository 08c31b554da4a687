"""UTC instants: the current one, and stored values read back as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

__all__ = ["as_utc", "utc_now"]


def utc_now() -> datetime:
    """Now, aware, in UTC (the default clock of the services, which tests replace)."""
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime. Everything is stored as UTC: SQLite hands values back
    naive, PostgreSQL aware (in the session's zone)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
