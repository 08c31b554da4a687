"""Raw-event retention: raw events older than ``raw_event_retention_days`` are deleted from
the raw-event archive; the hourly and daily rollups (what reports read) are kept for good.

The archive keeps raw events in hourly files, so retention works an hour at a time: an hour's
events go once the whole hour is past the cutoff (they are kept up to an hour longer than the
period, never shorter).

``purge_raw_events`` is what ``adtrack retention purge`` runs and what the runtime calls
periodically (:func:`purge_periodically`, every :data:`PURGE_INTERVAL_SECONDS`), with the
deployment's ``raw_event_retention_days``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from adtrack.services.ports import RawEventRetention

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


async def purge_periodically(
    archive: RawEventRetention,
    *,
    retention_days: int,
    interval_seconds: float = PURGE_INTERVAL_SECONDS,
) -> None:
    """Run :func:`purge_raw_events` now and then every ``interval_seconds``, in a worker
    thread, until cancelled (the runtime starts it with ``asyncio.create_task``)."""
    while True:
        try:
            await asyncio.to_thread(purge_raw_events, archive, retention_days=retention_days)
        except Exception:  # a failed purge is retried next time; it must not stop the loop
            log.exception("raw-event purge failed")
        await asyncio.sleep(interval_seconds)
