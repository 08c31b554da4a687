"""The aggregator loop: event log -> rollups, raw-event archive and log positions.

``Aggregator(reader, sink, archive=...)`` works with any :class:`EventLogReader` and
:class:`RollupSink` (the ports; ``bootstrap.open_aggregator`` builds them). For each batch it
writes the raw events to the archive (files named after the log range, so a retry rewrites the
same files), then commits the rollups, the archive's files and the log positions in one
transaction, by compare-and-set from where the batch started (see ``RollupSink.write``). On
start, and whenever a commit finds a position moved by someone else, the committed positions
are handed to the reader's ``restore(positions)``: a replay from any committed position adds
nothing, and a restart resumes exactly after the last committed batch. The reader's ``ack`` is
called after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from adtrack.aggregator.conversion_verdicts import (
    apply_verdicts,
    conversion_candidates,
    judge,
)
from adtrack.aggregator.event_batch import decode_batch
from adtrack.aggregator.rollup import fold_table
from adtrack.services.ports import (
    Batch,
    ConversionVerdicts,
    EventLogReader,
    PositionConflict,
    PrunableReader,
    RawEventArchive,
    RawFile,
    RestorableReader,
    RollupSink,
)

__all__ = ["Aggregator", "AggregatorStats"]

log = logging.getLogger(__name__)


@dataclass
class AggregatorStats:
    batches: int = 0  # committed
    records: int = 0  # in committed batches
    conflicts: int = 0  # batches dropped: their positions had been committed by someone else
    malformed: int = 0
    failures: int = 0
    pruned_segments: int = 0
    last_commit_monotonic: float = 0.0


class Aggregator:
    """Consumes ``reader`` into the rollups and log positions of ``sink`` and into ``archive``
    (None: raw events are not kept, for benchmarks and tests of the rollups alone).

    ``consumer`` names this aggregator in logs (default: the reader's ``consumer`` attribute);
    positions are shared by every aggregator on the database. Segments of the local log that are
    consumed and older than ``segment_retention_seconds`` are deleted every
    ``prune_every_seconds``.
    """

    def __init__(
        self,
        reader: EventLogReader,
        sink: RollupSink,
        *,
        archive: RawEventArchive | None,
        consumer: str | None = None,
        segment_retention_seconds: float = 3600.0,
        prune_every_seconds: float = 60.0,
    ) -> None:
        self._reader = reader
        self._sink = sink
        self._archive = archive
        self.consumer = consumer or str(getattr(reader, "consumer", "aggregator"))
        self._retention = segment_retention_seconds
        self._prune_every = prune_every_seconds
        self._next_prune = time.monotonic() + prune_every_seconds
        self._restored = False
        self._pending: Batch | None = None  # read but not committed: retried before reading on
        self.stats = AggregatorStats()

    async def run_once(self, max_records: int = 5000) -> int:
        """Read one batch (or retry the last uncommitted one) and commit it.

        Returns the number of records handled (0 when the log had nothing new), including those
        of a batch dropped because its positions were committed already. Raises if the archive
        or the database write fails; the same batch is then retried by the next call.
        """
        if not self._restored:
            await self._restore()
        batch = self._pending
        if batch is None:
            batch = await self._reader.read(max_records)
            if not batch.records and not batch.position:
                return 0
            self._pending = batch
        try:
            await asyncio.to_thread(self._commit, batch)
        except PositionConflict as exc:
            # Not an error: a replay, or another aggregator that read the same range first.
            log.info("aggregator %s: batch already committed (%s); re-reading", self.consumer, exc)
            self._pending = None
            self._restored = False
            self.stats.conflicts += 1
            return len(batch.records)
        self._pending = None
        await self._reader.ack(batch)
        stats = self.stats
        stats.batches += 1
        stats.records += len(batch.records)
        stats.last_commit_monotonic = time.monotonic()
        await self._maybe_prune()
        return len(batch.records)

    def _commit(self, batch: Batch) -> None:
        """Archive the batch's raw events, then commit everything (in a worker thread)."""
        decoded = decode_batch(batch.records)
        for raw, exc in decoded.malformed:
            # Counting it is impossible and retrying would block everything behind it.
            log.error("aggregator: skipped a malformed record (%s): %.200r", exc, raw)
        table = decoded.table
        # which attributed conversions count, before the archive keeps the batch (the verdicts
        # of a batch read again are those it got the first time: see conversion_verdicts.py)
        verdicts: ConversionVerdicts | None = None
        candidates = conversion_candidates(table)
        if candidates:
            verdicts = judge(candidates, self._sink.conversion_history(candidates))
            table = apply_verdicts(table, verdicts.reasons)
        positions = batch.position if isinstance(batch.position, Mapping) else None
        raw_files: list[RawFile] = []
        if self._archive is not None and table.num_rows:
            raw_files = self._archive.stage(table, _batch_key(batch, positions, table))
        delta = fold_table(table)
        self._sink.write(
            delta,
            starts=batch.starts,
            positions=positions,
            raw_files=raw_files,
            conversions=verdicts,
        )
        self.stats.malformed += len(decoded.malformed)

    async def run_forever(
        self, stop: asyncio.Event, poll_interval: float = 0.2, max_records: int = 5000
    ) -> None:
        """Aggregate until ``stop`` is set: back-to-back while there is a backlog (a batch of at
        least a quarter of ``max_records``), every ``poll_interval`` seconds otherwise, so a
        steady trickle is committed in a few batches a second rather than one per event;
        database errors are logged and retried with a growing pause (up to 5 s)."""
        backlog = max(1, max_records // 4)
        failures = 0
        while not stop.is_set():
            try:
                handled = await self.run_once(max_records)
            except Exception:
                failures += 1
                self.stats.failures += 1
                delay = min(5.0, poll_interval * 2 ** (failures - 1))
                log.exception("aggregator: batch failed, retrying in %.1f s", delay)
            else:
                if failures:
                    log.warning("aggregator: recovered after %d failed attempts", failures)
                failures = 0
                if handled >= backlog:
                    continue
                delay = poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def reset(self) -> None:
        """Forget the restored positions: the next run re-reads the log from its start (and
        finds those positions committed already, so it counts nothing twice)."""
        self._pending = None
        if isinstance(self._reader, RestorableReader):
            self._reader.restore({})
        self._restored = True

    async def _restore(self) -> None:
        if isinstance(self._reader, RestorableReader):
            positions = await asyncio.to_thread(self._sink.load_checkpoints)
            self._reader.restore(positions)
        self._restored = True

    async def _maybe_prune(self) -> None:
        if not isinstance(self._reader, PrunableReader) or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self._prune_every
        try:
            removed = await asyncio.to_thread(self._reader.prune, self._retention)
            if removed:
                await asyncio.to_thread(self._sink.forget_checkpoints, removed)
        except OSError as exc:
            log.warning("aggregator: could not delete consumed log segments: %s", exc)
            return
        self.stats.pruned_segments += len(removed)


def _batch_key(batch: Batch, positions: Mapping[str, int] | None, table: pa.Table) -> str:
    """The log range a batch covers (what names its archive files): the same range, read again,
    gives the same key. Without positions, the events' ids stand in for the range."""
    if positions:
        return ";".join(
            f"{source}:{batch.starts.get(source, 0)}-{end}"
            for source, end in sorted(positions.items())
        )
    return "ids:" + ",".join(table["event_id"].to_pylist())
