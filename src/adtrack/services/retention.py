"""Raw-event retention: events older than ``raw_event_retention_days`` are deleted; the hourly
and daily rollups (what reports read) are kept for good.

``purge_expired_events`` is what the runtime calls periodically (see
:data:`PURGE_INTERVAL_SECONDS`) and what ``adtrack retention purge`` runs. It deletes in small
batches, each in its own transaction, so the aggregator's writes never wait long behind it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from adtrack.adapters.sql import tables as t
from adtrack.config import Settings
from adtrack.domain.model import ImpType

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600
DEFAULT_BATCH = 10_000


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Events strictly older than this instant are purged."""
    return now.astimezone(UTC) - timedelta(days=retention_days)


def purge_raw_events(
    engine: Engine,
    *,
    retention_days: int,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Delete raw events older than the retention period; returns how many were deleted."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = retention_cutoff(now or datetime.now(UTC), retention_days)
    e = t.events
    deleted = 0
    # One imp_type at a time so each batch is found through the (imp_type, ts) index.
    for imp_type in (int(ImpType.EXTERNAL_IMPRESSION), int(ImpType.EXTERNAL_CLICK)):
        while True:
            oldest = (
                select(e.c.event_id)
                .where(e.c.imp_type == imp_type, e.c.ts < cutoff)
                .limit(batch_size)
                .scalar_subquery()
            )
            with engine.begin() as conn:
                count = conn.execute(delete(e).where(e.c.event_id.in_(oldest))).rowcount or 0
            deleted += count
            if count < batch_size:
                break
    if deleted:
        log.info("purged %d raw events older than %s", deleted, cutoff.isoformat())
    return deleted


def purge_expired_events(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """The periodic job: purge with the deployment's retention setting."""
    return purge_raw_events(engine, retention_days=settings.raw_event_retention_days, now=now)


async def purge_periodically(
    engine: Engine, settings: Settings, interval_seconds: float = PURGE_INTERVAL_SECONDS
) -> None:
    """Run :func:`purge_expired_events` now and then every ``interval_seconds``, in a worker
    thread, until cancelled (the runtime starts it with ``asyncio.create_task``)."""
    while True:
        try:
            await asyncio.to_thread(purge_expired_events, engine, settings)
        except Exception:  # a failed purge is retried next time; it must not stop the loop
            log.exception("raw-event purge failed")
        await asyncio.sleep(interval_seconds)
