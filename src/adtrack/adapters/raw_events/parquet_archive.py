"""Raw events as hourly Parquet files under one root directory.

Layout: ``<root>/hour=YYYY-MM-DDTHH/<name>.parquet``, one directory per UTC hour. A staged batch
becomes ``batch-<sha256(batch_key)[:24]>.parquet`` in each hour it touches; compaction merges
an hour's files into ``compacted-<sha256(member paths)[:24]>.parquet``. Every file is written
to a temporary name in its final directory, flushed to disk, renamed over its final name, and
the directory flushed too, so a reader never sees part of a file and a crash leaves either the
old state or the new file. The content depends only on the input (no timestamps, fixed writer
options), so staging the same batch again after a crash writes the same bytes.

Which files count is the ``raw_event_files`` manifest's business (``manifest.py``); the
maintenance methods here (:meth:`compact`, :meth:`delete_orphans`, :meth:`purge`) keep the
files and the manifest in step and are safe to run from several processes at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, delete, func, select

from adtrack.adapters.private_files import PRIVATE_FILE_MODE, fsync_directory, make_private_dir
from adtrack.adapters.raw_events.duckdb_session import open_duckdb
from adtrack.adapters.raw_events.manifest import (
    hour_index,
    hour_start,
    register_files,
)
from adtrack.adapters.sql import tables as t
from adtrack.domain.model import ImpType
from adtrack.domain.utc import as_utc
from adtrack.services.ports import RawFile
from adtrack.services.raw_event_columns import (
    RAW_EVENT_SCHEMA,
    conform_columns,
    epoch_hour_indices,
)

__all__ = [
    "REPEATED_TEXT",
    "ParquetRawEventArchive",
    "hour_directory",
    "is_sorted",
]

log = logging.getLogger(__name__)


TEMP_PREFIX = ".tmp-"
_COMPACTED = "compacted-"
_SUFFIX = ".parquet"
_CLICK = int(ImpType.EXTERNAL_CLICK)
_TS = RAW_EVENT_SCHEMA.names.index("ts")
# Writer options fixed here so the same rows always give the same bytes.
# Dictionary encoding pays for the columns that repeat (ids, user agents, referrers), not for
# the unique ones (it costs more than the rest of the write put together there); statistics
# let readers skip row groups by time and type.
_UNIQUE = ("event_id", "ts", "cachebuster")
_WRITE_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 1,  # as small as level 3 on events, and three times faster
    "use_dictionary": [name for name in RAW_EVENT_SCHEMA.names if name not in _UNIQUE],
    "write_statistics": ["ts", "imp_type"],
}
# The text columns written with a dictionary: readers get them as Arrow dictionaries, which
# costs a fraction of decoding every value (and lets the feeds format each value once).
REPEATED_TEXT = [
    field.name
    for field in RAW_EVENT_SCHEMA
    if field.name not in _UNIQUE and pa.types.is_string(field.type)
]
_ROW_GROUP = 128 * 1024
_MAX_MERGE = 500  # files merged at once (and paths per manifest statement)


def is_sorted(paths: Sequence[str]) -> bool:
    """Whether reading ``paths`` (one hour's files) in order gives rows sorted by
    ``(ts, event_id)``: true of one compacted file, which compaction writes sorted."""
    return len(paths) == 1 and paths[0].rsplit("/", 1)[-1].startswith(_COMPACTED)


def hour_directory(hour: int) -> str:
    """The directory of epoch hour ``hour``: ``hour=2026-03-09T05``."""
    return f"hour={hour_start(hour):%Y-%m-%dT%H}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class _Member:
    path: str
    rows: int
    clicks: int


class ParquetRawEventArchive:
    """The raw-event archive on a local (or shared network) file system rooted at ``root``."""

    def __init__(self, root: Path, *, sort_memory: str = "512MB", sort_threads: int = 2) -> None:
        self.root = Path(root)
        # What compaction's sort may use (DuckDB spills the rest to disk).
        self.sort_memory = sort_memory
        self.sort_threads = sort_threads

    # --- staging ----------------------------------------------------------------------------

    def stage(self, events: pa.Table, batch_key: str) -> list[RawFile]:
        """Write ``events`` (a table of :data:`RAW_EVENT_SCHEMA`'s columns) to one file per
        UTC hour they touch, named after ``batch_key``; rows keep the order they are given
        in."""
        if not events.num_rows:
            return []
        table = events if events.schema == RAW_EVENT_SCHEMA else _conform(events.to_batches())
        name = f"batch-{_digest(batch_key)}{_SUFFIX}"
        hours = epoch_hour_indices(table.column(_TS)).combine_chunks()
        runs = pc.run_end_encode(hours)
        run_hours: list[int] = runs.values.to_pylist()
        if len(set(run_hours)) == len(run_hours):
            # each hour's rows are together (events arrive in time order): slices copy nothing
            ends: list[int] = runs.run_ends.to_pylist()
            parts = sorted(zip(run_hours, [0, *ends[:-1]], ends, strict=True))
            return [
                self._write_hour(hour, name, table.slice(start, end - start))
                for hour, start, end in parts
            ]
        return [
            self._write_hour(hour, name, table.filter(pc.equal(hours, hour)))
            for hour in sorted(set(run_hours))
        ]

    def _write_hour(self, hour: int, name: str, table: pa.Table) -> RawFile:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=_ROW_GROUP, **_WRITE_OPTIONS)
        data = sink.getvalue()
        relative = f"{hour_directory(hour)}/{name}"
        self._publish(relative, [memoryview(data)])
        clicks = pc.sum(pc.equal(table.column("imp_type"), _CLICK)).as_py() or 0
        return RawFile(relative, hour, table.num_rows, int(clicks), data.size)

    def _publish(self, relative: str, chunks: Sequence[memoryview | bytes]) -> None:
        """Write ``chunks`` to ``relative`` atomically (see the module's docstring)."""
        final = self.root / relative
        with self._temporary(final.parent) as (fd, temp):
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.close(fd)
            os.replace(temp, final)
        fsync_directory(final.parent)

    @contextlib.contextmanager
    def _temporary(self, directory: Path) -> Iterator[tuple[int, Path]]:
        """A new private temporary file in ``directory`` (made if missing), removed if the
        block fails before renaming it."""
        temp = directory / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for attempt in range(2):
            if not directory.is_dir():
                make_private_dir(directory)
                fsync_directory(directory.parent)
            try:
                fd = os.open(temp, flags, PRIVATE_FILE_MODE)
                break
            except FileNotFoundError:  # delete_orphans removed the empty directory meanwhile
                if attempt:
                    raise
        try:
            yield fd, temp
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            temp.unlink(missing_ok=True)
            raise

    # --- maintenance ------------------------------------------------------------------------

    def compact(self, engine: Engine, closed_before_hour: datetime) -> int:
        """Merge the files of each hour that starts before ``closed_before_hour`` into one file
        sorted by ``(ts, event_id)`` (which readers then need not sort): every hour with more
        than one file in the manifest, or with one file that is not a compacted one. Returns
        how many files were merged away.

        Per hour: the merged file is written first, then one transaction lists it and unlists
        its members (refused if another process changed them meanwhile: the merged file is
        then an orphan). The members are left for :meth:`delete_orphans` (their modification
        time is set to the moment they were unlisted), so a feed that listed them a moment
        before can still read them. Files that arrive later for a compacted hour are merged
        with it next time.
        """
        f = t.raw_event_files
        cutoff = as_utc(closed_before_hour)
        with engine.connect() as conn:
            hours = conn.execute(
                select(f.c.hour, func.count(), func.min(f.c.path))
                .where(f.c.hour < cutoff)
                .group_by(f.c.hour)
                .order_by(f.c.hour)
            ).all()
        hour_list = [
            hour_index(h) for h, count, first in hours if count > 1 or not is_sorted([first])
        ]
        merged = 0
        for hour in hour_list:
            while True:
                with engine.connect() as conn:
                    rows = conn.execute(
                        select(f.c.path, f.c.rows, f.c.clicks)
                        .where(f.c.hour == hour_start(hour))
                        .order_by(f.c.created_at, f.c.path)
                        .limit(_MAX_MERGE)
                    ).all()
                members = [_Member(p, r, c) for p, r, c in rows]
                if not members or (len(members) == 1 and is_sorted([members[0].path])):
                    break
                if not self._merge(engine, hour, members):
                    break
                merged += len(members)
        return merged

    def _merge(self, engine: Engine, hour: int, members: list[_Member]) -> bool:
        f = t.raw_event_files
        name = f"{_COMPACTED}{_digest(chr(10).join(m.path for m in members))}{_SUFFIX}"
        relative = f"{hour_directory(hour)}/{name}"
        size = self._write_merged(relative, members)
        merged = RawFile(
            relative,
            hour,
            sum(m.rows for m in members),
            sum(m.clicks for m in members),
            size,
        )
        paths = [m.path for m in members]
        with engine.connect() as conn, conn.begin() as tx:
            gone = conn.execute(delete(f).where(f.c.path.in_(paths))).rowcount
            if gone != len(paths):  # another compaction or a purge got there first
                tx.rollback()
                log.info("compaction of %s skipped: its files changed", hour_directory(hour))
                return False
            register_files(conn, [merged])
        # The members are orphans now; a feed may still be reading them, so they are left to
        # delete_orphans, which deletes them once they have been unlisted that long.
        now = time.time()
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.root / path, (now, now))
        return True

    def _write_merged(self, relative: str, members: list[_Member]) -> int:
        """Write the members' rows sorted by ``(ts, event_id)`` into one file; returns its
        size. DuckDB sorts (spilling to disk past its memory limit); a row group at a time is
        held here. The order is total (event ids are unique), so the content is the same
        whichever process merges the same members."""
        final = self.root / relative
        files = [str(self.root / m.path) for m in members]
        with self._temporary(final.parent) as (fd, temp):
            duck = open_duckdb(self.sort_memory, self.sort_threads)
            try:
                sorted_rows: pa.RecordBatchReader = duck.sql(
                    # (by name: files written before a column existed lack it; _conform
                    # fills it with nulls)
                    "SELECT * FROM read_parquet($files, hive_partitioning = false, "
                    "union_by_name = true) ORDER BY ts, event_id",
                    params={"files": files},
                ).to_arrow_reader(_ROW_GROUP)
                with (
                    open(fd, "wb", closefd=False) as sink,
                    pq.ParquetWriter(sink, RAW_EVENT_SCHEMA, **_WRITE_OPTIONS) as writer,
                ):
                    pending: list[pa.RecordBatch] = []
                    rows = 0
                    for batch in sorted_rows:
                        pending.append(batch)
                        rows += batch.num_rows
                        if rows >= _ROW_GROUP:
                            table = _conform(pending)
                            writer.write_table(table.slice(0, _ROW_GROUP))
                            rest = table.slice(_ROW_GROUP)
                            pending, rows = rest.to_batches(), rest.num_rows
                    if rows:
                        writer.write_table(_conform(pending))
            finally:
                duck.close()
            os.fsync(fd)
            size = os.fstat(fd).st_size
            os.close(fd)
            os.replace(temp, final)
        fsync_directory(final.parent)
        return size

    def delete_orphans(self, engine: Engine, min_age_seconds: float) -> int:
        """Delete files under the root that the manifest does not list (batches that never
        committed, compactions that lost a race, members left by an interrupted compaction or
        purge) and leftover temporary files, once older than ``min_age_seconds``; then remove
        hour directories left empty. Returns how many files were deleted."""
        f = t.raw_event_files
        limit = time.time() - min_age_seconds
        deleted = 0
        for directory in self._hour_directories():
            candidates: list[str] = []
            for entry in os.scandir(directory):
                if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime > limit:
                    continue
                if entry.name.startswith(TEMP_PREFIX):
                    deleted += _unlink(Path(entry.path))
                elif entry.name.endswith(_SUFFIX):
                    candidates.append(f"{directory.name}/{entry.name}")
            for start in range(0, len(candidates), _MAX_MERGE):
                chunk = candidates[start : start + _MAX_MERGE]
                with engine.connect() as conn:
                    listed = set(
                        conn.execute(select(f.c.path).where(f.c.path.in_(chunk))).scalars()
                    )
                for path in chunk:
                    if path not in listed:
                        deleted += _unlink(self.root / path)
            _remove_if_empty(directory)
        if deleted:
            log.info("deleted %d raw-event files no batch committed", deleted)
        return deleted

    def purge(self, engine: Engine, before: datetime) -> int:
        """Retention: unlist and delete the files of every hour that ends at or before
        ``before``; returns how many rows (events) they held."""
        f = t.raw_event_files
        last_hour = hour_start(hour_index(before) - 1)
        removed = 0
        while True:
            with engine.begin() as conn:
                rows = conn.execute(
                    select(f.c.path, f.c.rows)
                    .where(f.c.hour <= last_hour)
                    .order_by(f.c.hour, f.c.path)
                    .limit(_MAX_MERGE)
                ).all()
                if not rows:
                    break
                conn.execute(delete(f).where(f.c.path.in_([p for p, _ in rows])))
            # Unlisted first, deleted after: a file left behind is an orphan, never a gap.
            directories = set()
            for path, count in rows:
                _unlink(self.root / path)
                directories.add((self.root / path).parent)
                removed += count
            for directory in directories:
                _remove_if_empty(directory)
        return removed

    def _hour_directories(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            Path(e.path)
            for e in os.scandir(self.root)
            if e.name.startswith("hour=") and e.is_dir(follow_symlinks=False)
        )


def _conform(batches: list[pa.RecordBatch]) -> pa.Table:
    names = RAW_EVENT_SCHEMA.names
    return pa.Table.from_batches([conform_columns(b, names) for b in batches]).cast(
        RAW_EVENT_SCHEMA
    )


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _remove_if_empty(directory: Path) -> None:
    """Remove an hour directory with nothing in it. A stager that made it just before and is
    about to create its file there makes it again (see ``_temporary``)."""
    with contextlib.suppress(OSError):
        directory.rmdir()  # fails (and is left) unless empty


@dataclass(frozen=True)
class ArchiveRetention:
    """The archive's retention purge, with its manifest in ``engine``
    (:class:`~adtrack.services.ports.RawEventRetention`)."""

    archive: ParquetRawEventArchive
    engine: Engine

    def purge(self, before: datetime) -> int:
        return self.archive.purge(self.engine, before)
