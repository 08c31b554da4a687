"""The aggregator loop: event log -> raw events, hourly rollups and checkpoints in SQL.

``Aggregator(reader, engine)`` works with any :class:`EventLogReader`. When a batch's
``position`` is a mapping (source -> integer position), it is committed to
``eventlog_checkpoints`` in the same transaction as the rows, and on start the stored mapping is
handed to the reader's ``restore(positions)`` if it has one: that makes a restart resume exactly
after the last committed batch. Independently of that, raw events are inserted idempotently by
``event_id`` and only newly inserted ones are rolled up, so a batch delivered twice is counted
once. The reader's ``ack`` is called after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine

from adtrack.aggregator.sql_sink import SqlSink
from adtrack.domain.events import Event, MalformedEvent
from adtrack.services.event_log import Batch, EventLogReader

__all__ = ["Aggregator", "AggregatorStats", "PrunableReader", "RestorableReader"]

log = logging.getLogger(__name__)


@runtime_checkable
class RestorableReader(Protocol):
    """A reader that can resume from positions the aggregator committed."""

    def restore(self, positions: Mapping[str, int]) -> None: ...


@runtime_checkable
class PrunableReader(Protocol):
    """A reader whose consumed data can be deleted (the local log's old segments)."""

    def prune(self, min_age_seconds: float) -> list[str]: ...


@dataclass
class AggregatorStats:
    batches: int = 0
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    malformed: int = 0
    failures: int = 0
    pruned_segments: int = 0
    last_commit_monotonic: float = 0.0


class Aggregator:
    """Consumes ``reader`` into the reporting tables of ``engine``.

    ``consumer`` names the checkpoint rows (default: the reader's ``consumer`` attribute).
    Segments of the local log that are consumed and older than ``segment_retention_seconds``
    are deleted every ``prune_every_seconds``.
    """

    def __init__(
        self,
        reader: EventLogReader,
        engine: Engine,
        *,
        consumer: str | None = None,
        segment_retention_seconds: float = 3600.0,
        prune_every_seconds: float = 60.0,
    ) -> None:
        self._reader = reader
        self._sink = SqlSink(engine)
        self.consumer = consumer or str(getattr(reader, "consumer", "aggregator"))
        self._retention = segment_retention_seconds
        self._prune_every = prune_every_seconds
        self._next_prune = time.monotonic() + prune_every_seconds
        self._restored = False
        self._pending: Batch | None = None  # read but not committed: retried before reading on
        self.stats = AggregatorStats()

    async def run_once(self, max_records: int = 5000) -> int:
        """Read one batch (or retry the last uncommitted one) and commit it.

        Returns the number of records handled (0 when the log had nothing new). Raises if the
        database write fails; the same batch is then retried by the next call.
        """
        if not self._restored:
            await self._restore()
        batch = self._pending
        if batch is None:
            batch = await self._reader.read(max_records)
            if not batch.records and not batch.position:
                return 0
            self._pending = batch
        decoded = self._decode(batch.records)
        positions = batch.position if isinstance(batch.position, Mapping) else None
        result = await asyncio.to_thread(
            self._sink.write, decoded, consumer=self.consumer, positions=positions
        )
        self._pending = None
        await self._reader.ack(batch)
        stats = self.stats
        stats.batches += 1
        stats.records += len(batch.records)
        stats.inserted += result.inserted
        stats.duplicates += result.duplicates
        stats.last_commit_monotonic = time.monotonic()
        await self._maybe_prune()
        return len(batch.records)

    async def run_forever(self, stop: asyncio.Event, poll_interval: float = 0.2) -> None:
        """Aggregate until ``stop`` is set: back-to-back while there is a backlog, every
        ``poll_interval`` seconds otherwise; database errors are logged and retried with a
        growing pause (up to 5 s)."""
        failures = 0
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                failures += 1
                self.stats.failures += 1
                delay = min(5.0, poll_interval * 2 ** (failures - 1))
                log.exception("aggregator: batch failed, retrying in %.1f s", delay)
            else:
                if failures:
                    log.warning("aggregator: recovered after %d failed attempts", failures)
                failures = 0
                if handled:
                    continue
                delay = poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def reset(self) -> None:
        """Forget the restored positions: the next run re-reads the log from its start (events
        already stored are recognised by ``event_id`` and not counted again)."""
        self._pending = None
        if isinstance(self._reader, RestorableReader):
            self._reader.restore({})
        self._restored = True

    async def _restore(self) -> None:
        if isinstance(self._reader, RestorableReader):
            positions = await asyncio.to_thread(self._sink.load_checkpoints, self.consumer)
            self._reader.restore(positions)
        self._restored = True

    def _decode(self, records: list[bytes]) -> list[Event]:
        decoded: list[Event] = []
        for raw in records:
            try:
                decoded.append(Event.from_bytes(raw))
            except MalformedEvent as exc:
                # Counting it is impossible and retrying would block everything behind it.
                self.stats.malformed += 1
                log.error("aggregator: skipped a malformed record (%s): %.200r", exc, raw)
        return decoded

    async def _maybe_prune(self) -> None:
        if not isinstance(self._reader, PrunableReader) or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self._prune_every
        try:
            removed = await asyncio.to_thread(self._reader.prune, self._retention)
            if removed:
                await asyncio.to_thread(self._sink.forget_checkpoints, self.consumer, removed)
        except OSError as exc:
            log.warning("aggregator: could not delete consumed log segments: %s", exc)
            return
        self.stats.pruned_segments += len(removed)
