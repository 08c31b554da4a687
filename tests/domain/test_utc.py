"""Stored instants come back as aware UTC datetimes, whichever database stored them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from adtrack.domain.utc import as_utc, utc_now


def test_naive_values_are_utc_and_aware_ones_are_converted() -> None:
    naive = datetime(2026, 3, 29, 1, 30)  # as SQLite hands it back
    assert as_utc(naive) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    paris = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))  # as PostgreSQL
    converted = as_utc(paris)
    assert converted == naive.replace(tzinfo=UTC) and converted.tzinfo is UTC
    assert as_utc(None) is None


def test_now_is_aware_utc() -> None:
    now = utc_now()
    assert now.tzinfo is UTC and abs(now - datetime.now(UTC)) < timedelta(seconds=5)
