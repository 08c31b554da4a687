"""Retention: raw events older than ``raw_event_retention_days`` are deleted from the
raw-event archive; the hourly and daily rollups (what reports read) are kept for good. The
aggregator's conversion bookkeeping (its verdicts and the order ids they counted) is kept for
``conversion_dedup_retention_days`` (see :func:`purge_conversion_bookkeeping`).

The archive keeps raw events in hourly files, so retention works an hour at a time: an hour's
events go once the whole hour is past the cutoff (they are kept up to an hour longer than the
period, never shorter).

``purge_raw_events`` and ``purge_conversion_bookkeeping`` are what ``adtrack retention purge``
runs and what the aggregator process calls periodically (:func:`purge_periodically`, every
:data:`PURGE_INTERVAL_SECONDS`), with the deployment's settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from adtrack.domain.conversion_retention import MIN_CONVERSION_DEDUP_RETENTION_DAYS
from adtrack.services.ports import ConversionBookkeepingRetention, RawEventRetention

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Events of hours that end at or before this instant are purged."""
    return now.astimezone(UTC) - timedelta(days=retention_days)


def purge_raw_events(
    archive: RawEventRetention,
    *,
    retention_days: int,
    now: datetime | None = None,
) -> int:
    """Delete raw events older than the retention period; returns how many were deleted."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = retention_cutoff(now or datetime.now(UTC), retention_days)
    deleted = archive.purge(cutoff)
    if deleted:
        log.info("purged %d raw events older than %s", deleted, cutoff.isoformat())
    return deleted


def purge_conversion_bookkeeping(
    store: ConversionBookkeepingRetention,
    *,
    retention_days: int,
    now: datetime | None = None,
) -> int:
    """Forget the verdicts of conversions older than ``retention_days`` and the order ids
    they counted; returns how many verdicts were deleted.

    Why that is safe, and the least it may be: ``domain/conversion_retention.py``. An order id
    goes with the verdict of the conversion that counted it: the same order reported again
    after that counts again (docs/conversions.md, "Retention").
    """
    if retention_days < MIN_CONVERSION_DEDUP_RETENTION_DAYS:
        raise ValueError(
            "the conversion bookkeeping must be kept at least "
            f"{MIN_CONVERSION_DEDUP_RETENTION_DAYS} days, got {retention_days}"
        )
    cutoff = retention_cutoff(now or datetime.now(UTC), retention_days)
    before_us = (cutoff - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    deleted = store.purge(before_us)
    if deleted:
        log.info("purged %d conversion verdicts older than %s", deleted, cutoff.isoformat())
    return deleted


async def run_periodically(
    job: Callable[[], object], what: str, interval_seconds: float = PURGE_INTERVAL_SECONDS
) -> None:
    """Run ``job`` now and then every ``interval_seconds``, in a worker thread, until
    cancelled; a failure is logged and retried next time."""
    while True:
        try:
            await asyncio.to_thread(job)
        except Exception:  # retried next time; it must not stop the loop
            log.exception("%s failed", what)
        await asyncio.sleep(interval_seconds)


async def purge_periodically(
    archive: RawEventRetention,
    *,
    retention_days: int,
    interval_seconds: float = PURGE_INTERVAL_SECONDS,
) -> None:
    """Run :func:`purge_raw_events` now and then every ``interval_seconds``, in a worker
    thread, until cancelled (the runtime starts it with ``asyncio.create_task``)."""
    await run_periodically(
        lambda: purge_raw_events(archive, retention_days=retention_days),
        "raw-event purge",
        interval_seconds,
    )
