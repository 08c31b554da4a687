"""Epoch hours: how events' times (epoch microseconds, UTC) map to the UTC hours that rollups
and raw-event files are kept by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "HOUR_MICROS", "hour_start"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MICROS = 3_600_000_000


def hour_start(hour: int) -> datetime:
    """The start of epoch hour ``hour`` (aware, UTC)."""
    return EPOCH + timedelta(hours=hour)
