"""The aggregator as a part of a deployment: run with the maintenance it owns, and as a
supervised process of ``adtrack serve``. It is built from the settings in one place,
``adtrack.bootstrap.open_aggregator``.

* :func:`aggregate` — consume the event log into the reporting tables until told to stop, with
  a progress line every 10 s while something happens and, with ``maintenance``, the
  raw-event retention purge (the local log's consumed segments are pruned by the aggregator
  itself).
* :class:`AggregatorProcess` — ``adtrack serve``'s aggregator in a process of its own
  (``python -m adtrack.aggregator.process``), supervised like the collector processes (see
  :mod:`adtrack.supervisor`): restarted when it dies, stopped with SIGTERM, stopping by itself
  when ``serve`` is gone. Its work (decoding, rolling up, SQL writes) then never runs on the
  API's event loop nor holds its interpreter lock, and it runs at a lower CPU priority than
  the collectors (``ADTRACK_AGGREGATOR_NICE``) so that on a shared core a pixel's answer wins
  over a report's freshness.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from adtrack import bootstrap
from adtrack.aggregator.runner import Aggregator
from adtrack.config import Settings
from adtrack.services.ports import RawEventStore
from adtrack.services.retention import (
    purge_conversion_bookkeeping,
    purge_periodically,
    run_periodically,
)
from adtrack.supervisor import (
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    ChildSpec,
    Supervisor,
    signal_ready,
    stop_when_orphaned,
)

__all__ = ["AggregatorProcess", "aggregate", "main"]

# Named, not __name__: run as ``python -m`` this module is ``__main__``, outside the ``adtrack``
# loggers whose level the process sets.
log = logging.getLogger("adtrack.aggregator.process")

DEFAULT_CONSUMER = "aggregator"
PROGRESS_EVERY_SECONDS = 10.0


async def aggregate(
    settings: Settings,
    engine: Engine,
    stop: asyncio.Event,
    *,
    consumer: str = DEFAULT_CONSUMER,
    maintenance: bool = True,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Aggregate until ``stop`` is set (the batch in hand is finished first).

    Raw events an earlier version left in the ``events`` table are moved into the archive
    first. ``maintenance`` adds the retention purges (hourly: raw events, and the conversion
    verdicts and order ids past ``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS``) and the archive's
    compaction and orphan deletion (``ADTRACK_RAW_EVENT_MAINTENANCE_SECONDS``): one per
    installation is enough, so ``adtrack serve``'s aggregator does it and ``adtrack
    aggregator`` does not.
    ``on_ready`` is called once the aggregator is built.
    """
    archive = bootstrap.build_raw_event_archive(settings)
    async with bootstrap.open_aggregator(settings, engine, archive, consumer) as aggregator:
        jobs = [asyncio.create_task(_report_progress(aggregator, stop))]
        if maintenance:
            retention = bootstrap.build_raw_event_retention(settings, engine)
            jobs.append(
                asyncio.create_task(
                    purge_periodically(retention, retention_days=settings.raw_event_retention_days)
                )
            )
            jobs.append(asyncio.create_task(_maintain_archive(engine, archive, settings)))
            bookkeeping = bootstrap.build_conversion_bookkeeping_retention(settings, engine)
            days = settings.conversion_dedup_retention_days
            jobs.append(
                asyncio.create_task(
                    run_periodically(
                        lambda: purge_conversion_bookkeeping(bookkeeping, retention_days=days),
                        "conversion bookkeeping purge",
                    )
                )
            )
        try:
            if on_ready is not None:
                on_ready()
            try:  # in a thread: it may take a while after an upgrade
                await asyncio.to_thread(bootstrap.carry_over_legacy_events, engine, archive)
            except Exception:  # retried at the next start (or by `adtrack events archive`)
                log.exception("carrying raw events over from the events table failed")
            await aggregator.run_forever(
                stop,
                poll_interval=settings.aggregator_poll_seconds,
                max_records=settings.aggregator_batch_events,
            )
        finally:
            stop.set()
            for job in jobs:
                job.cancel()
            for job in jobs:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await job


# An hour is compacted once this long after its end (late events of it are merged next time),
# and a file nobody lists any more is deleted once unlisted this long (a feed that listed it a
# moment before may still be reading it).
COMPACT_AFTER = timedelta(minutes=10)
ORPHAN_GRACE_SECONDS = 600.0


async def _maintain_archive(engine: Engine, archive: RawEventStore, settings: Settings) -> None:
    """Every ``ADTRACK_RAW_EVENT_MAINTENANCE_SECONDS``: merge each closed hour's files into one
    (sorted, so feeds read it without sorting) and delete files no batch committed."""
    while True:
        await asyncio.sleep(settings.raw_event_maintenance_seconds)
        try:
            closed = datetime.now(UTC) - COMPACT_AFTER
            merged = await asyncio.to_thread(
                archive.compact, engine, closed.replace(minute=0, second=0, microsecond=0)
            )
            deleted = await asyncio.to_thread(archive.delete_orphans, engine, ORPHAN_GRACE_SECONDS)
            if merged or deleted:
                log.info("raw-event archive: %d files compacted, %d deleted", merged, deleted)
        except Exception:  # retried next time; it must not stop the loop
            log.exception("raw-event archive maintenance failed")


async def _report_progress(aggregator: Aggregator, stop: asyncio.Event) -> None:
    """A log line every 10 s while something happens."""
    last = -1
    started = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_SECONDS)
        stats = aggregator.stats
        if stats.records != last:
            last = stats.records
            log.info(
                "aggregator: %d records in %d batches (%d batches committed by others first, "
                "%d malformed, %d failed attempts) in %.0fs",
                stats.records,
                stats.batches,
                stats.conflicts,
                stats.malformed,
                stats.failures,
                time.monotonic() - started,
            )


class AggregatorProcess:
    """``adtrack serve``'s aggregator in a supervised process of its own (module docstring).

    The child reads its settings from the environment (``env``, default this process's), like
    the collector processes; the database must be migrated already (``serve`` does it first).
    """

    def __init__(
        self,
        *,
        consumer: str = DEFAULT_CONSUMER,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.consumer = consumer
        self._supervisor = Supervisor(
            [ChildSpec("aggregator", self._command, ready_means="running")],
            env=env,
            startup_timeout=startup_timeout,
            thread_name="aggregator-supervisor",
        )

    @property
    def pids(self) -> list[int]:
        """The process id of the aggregator (empty while it is restarting)."""
        return self._supervisor.pids

    @property
    def restarts(self) -> int:
        return self._supervisor.restarts

    def start(self) -> AggregatorProcess:
        """Start the aggregator process and wait until it runs."""
        self._supervisor.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (it finishes its batch), then SIGKILL after ``timeout`` seconds."""
        self._supervisor.stop(timeout)

    def _command(self, ready_fd: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "adtrack.aggregator.process",
            "--consumer",
            self.consumer,
            "--ready-fd",
            str(ready_fd),
        ]


# ---- the aggregator process ---------------------------------------------------------------------


async def _run_child(consumer: str, ready_fd: int) -> None:
    settings = Settings.from_env()
    if settings.aggregator_nice:
        # Lower priority than the collectors: on a shared core the kernel runs a pixel's
        # answer first; the aggregator catches up when the collectors are idle.
        try:
            os.nice(settings.aggregator_nice)
        except OSError as exc:  # a negative increment needs privileges
            log.warning("aggregator: cannot change its priority: %s", exc)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    engine = bootstrap.open_engine(settings)
    watchdog = asyncio.create_task(stop_when_orphaned(stop))
    try:
        await aggregate(
            settings,
            engine,
            stop,
            consumer=consumer,
            maintenance=True,
            on_ready=lambda: signal_ready(ready_fd),
        )
    finally:
        stop.set()
        await watchdog
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """``python -m adtrack.aggregator.process``: ``adtrack serve``'s aggregator (started by it)."""
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m adtrack.aggregator.process")
    parser.add_argument("--consumer", default=DEFAULT_CONSUMER)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s aggregator %(name)s: %(message)s",
    )
    logging.getLogger("adtrack").setLevel(logging.INFO)
    uvloop.run(_run_child(args.consumer, args.ready_fd))


if __name__ == "__main__":
    main()
