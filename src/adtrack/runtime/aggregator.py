"""``adtrack aggregator``: only the consumer of the event log into the reporting tables."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import uvloop

from adtrack import bootstrap
from adtrack.aggregator.process import aggregate
from adtrack.config import Settings

__all__ = ["run_aggregator"]

log = logging.getLogger(__name__)


def run_aggregator(settings: Settings, *, consumer: str = "aggregator") -> None:
    """Consume the event log into the reporting tables until SIGINT/SIGTERM.

    Brings the schema up to date first, waiting (and retrying) while the database is down.
    Any number may run at once on one log (same ``consumer``): each event is stored once.
    """
    uvloop.run(_aggregate(settings, consumer))


async def _aggregate(settings: Settings, consumer: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if not await _upgrade_when_reachable(settings, stop):
        return
    engine = bootstrap.open_engine(settings)
    try:
        await aggregate(
            settings,
            engine,
            stop,
            consumer=consumer,
            maintenance=False,  # adtrack serve's aggregator purges
            on_ready=lambda: print(
                f"adtrack: aggregator running (consumer {consumer})", flush=True
            ),
        )
    finally:
        engine.dispose()


async def _upgrade_when_reachable(settings: Settings, stop: asyncio.Event) -> bool:
    """Migrate, retrying while the database cannot be reached; False if stopped first."""
    delay = 0.5
    while not stop.is_set():
        try:
            await asyncio.to_thread(bootstrap.migrate, settings)
            return True
        except Exception as exc:
            log.warning("aggregator: database not ready (%s); retrying in %.1fs", exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 5.0)
    return False
