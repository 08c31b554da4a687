"""The embedded event log's reader: every writer's segment files, in order, whole frames only.

The aggregator reads the local log through :class:`LocalEventLogReader`; the writer is in
``local_writer.py``, the file format in ``segment_format.py``, the naming and liveness rules in
``segment_files.py``; the guarantees are spelled out in ``docs/durability.md``.

A frame that is torn (or fails its CRC) is skipped only once its segment is final, i.e. its
writer has moved on or is gone. ``Batch.position`` maps segment names to the offset after the
batch and ``Batch.starts`` to the offset it began at; the aggregator moves the stored offsets from
one to the other in the same SQL transaction as the rollups and hands them back through
:meth:`LocalEventLogReader.restore` after a restart. Segments that are final, fully read and
committed are deleted by :meth:`LocalEventLogReader.prune`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from adtrack.adapters.eventlog.segment_files import (
    is_held_by_writer,
    list_segments,
    remove_stale_temp_files,
)
from adtrack.adapters.eventlog.segment_format import (
    HEADER_SIZE,
    ScanStop,
    frame_length_at,
    header_is_valid,
    scan_frames,
)
from adtrack.services.ports import Batch

__all__ = ["LocalEventLogReader"]

log = logging.getLogger(__name__)


class LocalEventLogReader:
    """Reads every writer's segments under ``directory`` for the consumer ``consumer``.

    Positions live in memory; the aggregator persists them (``Batch.position``, a mapping of
    segment name to byte offset) and calls :meth:`restore` when it starts.
    """

    def __init__(
        self, directory: Path | str, *, consumer: str, read_chunk_bytes: int = 1 << 20
    ) -> None:
        self.consumer = consumer
        self._dir = Path(directory)
        self._chunk = read_chunk_bytes
        self._next: dict[str, int] = {}  # next offset to read, per segment
        self._acked: dict[str, int] = {}  # offset committed downstream, per segment
        self._finished: set[str] = set()  # final and read to its end
        self._turn = 0  # which writer is read first, so a backlog cannot starve the others
        self.skipped_bytes = 0  # torn or corrupt bytes skipped at the end of final segments

    def restore(self, positions: Mapping[str, int]) -> None:
        """Resume from committed positions (segment name -> byte offset)."""
        self._next = dict(positions)
        self._acked = dict(positions)
        self._finished.clear()

    async def read(self, max_records: int) -> Batch:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        return await asyncio.to_thread(self.read_now, max_records)

    async def ack(self, batch: Batch) -> None:
        if isinstance(batch.position, Mapping):
            for name, offset in batch.position.items():
                self._acked[name] = max(self._acked.get(name, 0), offset)

    async def close(self) -> None:
        return None

    def read_now(self, max_records: int) -> Batch:
        """The blocking body of :meth:`read`."""
        listing = list_segments(self._dir)
        writers = sorted(listing)
        if writers:
            first = self._turn % len(writers)
            writers = writers[first:] + writers[:first]
            self._turn += 1
        records: list[bytes] = []
        positions: dict[str, int] = {}
        starts: dict[str, int] = {}
        for writer in writers:
            segments = listing[writer]
            for index, (_seq, name) in enumerate(segments):
                if name in self._finished:
                    continue
                final = index + 1 < len(segments) or not is_held_by_writer(self._dir / name)
                done = self._read_segment(name, final, max_records, records, positions, starts)
                if not done:
                    break  # the rest of this writer's data comes later
            if len(records) >= max_records:
                break
        return Batch(records=records, position=positions, starts=starts, source="local")

    def _read_segment(
        self,
        name: str,
        final: bool,
        max_records: int,
        records: list[bytes],
        positions: dict[str, int],
        starts: dict[str, int],
    ) -> bool:
        """Read frames of one segment into ``records``; True if it is final and fully read.

        ``final`` is decided before reading: once final, the file no longer changes, so whatever
        does not parse at its end is a torn or corrupt tail and is skipped.
        """
        start = self._next.get(name, 0)
        try:
            fd = os.open(self._dir / name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._finished.add(name)
            return True
        try:
            size = os.fstat(fd).st_size
            offset = start
            stop = ScanStop.END
            if offset < HEADER_SIZE:
                if header_is_valid(os.pread(fd, HEADER_SIZE, 0)):
                    offset = HEADER_SIZE
                else:
                    stop = ScanStop.CORRUPT
            if stop is ScanStop.END:
                offset, stop = self._scan(fd, offset, size, max_records, records)
        finally:
            os.close(fd)
        if stop in (ScanStop.INCOMPLETE, ScanStop.CORRUPT) and final:
            skipped = size - offset
            self.skipped_bytes += skipped
            log.warning(
                "event log: skipped %d %s bytes at the end of %s (an append that never completed)",
                skipped,
                stop.value,
                name,
            )
            offset, stop = size, ScanStop.END
        if offset != start:
            self._next[name] = offset
            positions[name] = offset
            starts[name] = start
        if stop is ScanStop.END and final:
            self._finished.add(name)
            return True
        return False

    def _scan(
        self, fd: int, offset: int, size: int, max_records: int, records: list[bytes]
    ) -> tuple[int, ScanStop]:
        chunk = self._chunk
        while offset < size:
            if len(records) >= max_records:
                return offset, ScanStop.LIMIT
            remaining = size - offset
            data = os.pread(fd, min(remaining, chunk), offset)
            if not data:
                return offset, ScanStop.INCOMPLETE
            scan = scan_frames(data, offset, max_records, already=len(records))
            records.extend(scan.records)
            offset = scan.next_offset
            if scan.stop is ScanStop.INCOMPLETE and len(data) < remaining:
                # Our chunk ended inside a frame, the file did not: read on, a whole frame at least.
                if scan.frames == 0:
                    need = frame_length_at(data)
                    if need is None:
                        return offset, ScanStop.CORRUPT
                    chunk = max(chunk, need)
                continue
            if scan.stop is not ScanStop.END:
                return offset, scan.stop
        return offset, ScanStop.END

    def prune(self, min_age_seconds: float) -> list[str]:
        """Delete segments that are final, fully read AND acked, and untouched for
        ``min_age_seconds``. Only for a single consumer: others reading the same folder would
        lose them. Returns the names removed."""
        removed: list[str] = []
        now = time.time()
        for name in sorted(self._finished):
            path = self._dir / name
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                self._finished.discard(name)
                continue
            if self._acked.get(name, -1) < stat.st_size or now - stat.st_mtime < min_age_seconds:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            removed.append(name)
            self._finished.discard(name)
            self._next.pop(name, None)
            self._acked.pop(name, None)
        remove_stale_temp_files(self._dir, now, min_age_seconds)
        return removed
