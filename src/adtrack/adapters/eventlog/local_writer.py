"""The embedded event log's writer: appends to this process's own segment files.

Collectors write through :class:`LocalEventLogWriter`; the aggregator reads the files with
``local_reader.py``. The file format is in ``segment_format.py``, the naming, creation and
liveness rules in ``segment_files.py``; the guarantees are spelled out in ``docs/durability.md``.

Every ``append`` is ONE ``os.write`` of one CRC-checked frame into the writer's own segment file
(so it survives ``kill -9``: the page cache has it), then the fsync policy: ``always`` waits for
an ``fdatasync`` (run in a helper thread; concurrent appends share one), ``interval`` leaves it
to a background ``fdatasync`` every ``fsync_interval_ms``, ``never`` leaves it to the OS. Any
``OSError`` turns into :class:`EventLogUnavailable` (the collector answers 503); the writer then
refuses appends for a short back-off and retries on a new segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from adtrack.adapters.eventlog.local_fsync import FsyncPolicy, sync_files
from adtrack.adapters.eventlog.segment_files import (
    check_writer_id,
    close_quietly,
    create_segment,
    highest_seq,
    lock_writer_id,
    read_seq_counter,
    segment_name,
    write_all,
    write_seq_counter,
)
from adtrack.adapters.eventlog.segment_format import HEADER_SIZE, encode_frame
from adtrack.adapters.private_files import PRIVATE_DIR_MODE, make_private_dir
from adtrack.services.ports import EventLogUnavailable

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "LocalEventLogWriter",
    "WriterStats",
]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_T = TypeVar("_T")


@dataclass
class WriterStats:
    appends: int = 0
    records: int = 0
    bytes: int = 0
    fsyncs: int = 0
    failures: int = 0
    segments_opened: int = 0


@dataclass
class _OpenSegment:
    name: str
    fd: int
    size: int
    abandoned: bool = False  # after a failure: its fsync result no longer matters


# A writer belongs to the process that opened it: after a fork the child shares the parent's
# file descriptions (and locks), and two processes appending to one segment would interleave
# frames at the same offsets. Children therefore get writers that refuse to work.
_writers: weakref.WeakSet[LocalEventLogWriter] = weakref.WeakSet()


def _disable_inherited_writers() -> None:
    for writer in list(_writers):
        writer._forked = True


os.register_at_fork(after_in_child=_disable_inherited_writers)


class LocalEventLogWriter:
    """Appends batches of records to this process's own segment files.

    ``writer_id`` names the files (``<writer_id>-<seq:08d>.seg``); by default a random id per
    writer. An explicit id is reserved with a lock file while the writer is open and resumes
    after its highest existing sequence number.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        writer_id: str | None = None,
        fsync: FsyncPolicy | str = FsyncPolicy.INTERVAL,
        fsync_interval_ms: int = 200,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retry_backoff: float = 0.05,
        max_retry_backoff: float = 1.0,
    ) -> None:
        try:
            self._policy = FsyncPolicy(fsync)
        except ValueError:
            raise ValueError(f"fsync policy {fsync!r}: use always, interval or never") from None
        if fsync_interval_ms <= 0:
            raise ValueError("fsync_interval_ms must be positive")
        self._dir = Path(directory)
        make_private_dir(self._dir, tighten=True)
        self._id_lock_fd: int | None = None
        if writer_id is None:
            self.writer_id = secrets.token_hex(8)
            self._next_seq = 1
        else:
            self.writer_id = check_writer_id(writer_id)
            self._id_lock_fd = lock_writer_id(self._dir, writer_id)
            used = max(highest_seq(self._dir, writer_id), read_seq_counter(self._id_lock_fd))
            self._next_seq = used + 1
        self._segment_bytes = segment_bytes
        self._interval = fsync_interval_ms / 1000
        self._first_backoff = retry_backoff
        self._max_backoff = max_retry_backoff
        self.stats = WriterStats()

        self._segment: _OpenSegment | None = None
        self._retired: list[_OpenSegment] = []  # rotated or abandoned, not yet synced+closed
        self._writes = 0  # appends written so far (a generation number for the fsyncs)
        self._synced = 0  # appends known to be on disk
        self._sync_failed_through = 0  # appends whose fsync failed: they must not succeed
        self._sync_lock = asyncio.Lock()
        self._fsync_thread = ThreadPoolExecutor(1, thread_name_prefix="eventlog-fsync")
        self._in_thread: set[Awaitable[object]] = set()
        self._background: asyncio.Task[None] | None = None
        self._stop_background = asyncio.Event()

        self._failure: str | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._closed = False
        self._forked = False
        _writers.add(self)

    # -- public ---------------------------------------------------------------------------

    @property
    def policy(self) -> FsyncPolicy:
        return self._policy

    @property
    def healthy(self) -> bool:
        """False from a failed write until a write succeeds again."""
        return self._failure is None

    @property
    def failure(self) -> str | None:
        """Why the last write failed, while unhealthy."""
        return self._failure

    def readiness(self) -> str | None:
        """None while appends are expected to succeed; else why not. After a failed write this
        tries to recover once its back-off has passed, by opening a new segment (creating a
        file and writing its header is a real write: it fails on a full or read-only disk), so
        a writer that gets no appends meanwhile still becomes ready again."""
        if self._forked:
            return "the event log writer belongs to the parent process"
        if self._closed:
            return "the event log writer is closed"
        if self._failure is None:
            return None
        if time.monotonic() >= self._retry_at:
            try:
                self._prepare_segment()
            except EventLogUnavailable:
                pass
            else:
                log.warning("event log: a new segment could be written, taking events again")
                self._failure = None
                self._backoff = 0.0
                return None
        return f"event log unavailable: {self._failure}"

    @property
    def current_segment(self) -> str | None:
        return self._segment.name if self._segment is not None else None

    async def append(self, records: Sequence[bytes]) -> None:
        """Write ``records`` as one frame, then honour the fsync policy.

        Raises :class:`EventLogUnavailable` if they could not be written (then none of them
        will ever be read) or, with ``always``, if the fsync failed.
        """
        if not records:
            return
        self._write(records)
        if self._policy is FsyncPolicy.ALWAYS:
            await self._sync_through(self._writes)

    @property
    def writes_synchronously(self) -> bool:
        """Whether :meth:`append_now` keeps the policy's promise: true unless ``always``, whose
        promise needs an ``fdatasync`` to be awaited."""
        return self._policy is not FsyncPolicy.ALWAYS

    def append_now(self, records: Sequence[bytes]) -> None:
        """:meth:`append` without an event-loop round trip, for ``interval`` and ``never``:
        once the frame is written their promise (it survives the process) is kept."""
        if self._policy is FsyncPolicy.ALWAYS:
            raise RuntimeError("append_now cannot wait for an fsync: use append")
        if records:
            self._write(records)

    def _write(self, records: Sequence[bytes]) -> None:
        segment = self._segment
        if segment is None or segment.size >= self._segment_bytes or self._failure is not None:
            segment = self._prepare_segment()
        elif self._forked or self._closed:
            self._prepare_segment()  # raises
        frame = encode_frame(records)
        self._write_frame(segment, frame)
        self._writes += 1
        stats = self.stats
        stats.appends += 1
        stats.records += len(records)
        stats.bytes += len(frame)
        if self._background is None or self._background.done():
            self._start_background()

    async def flush(self) -> None:
        """fdatasync everything appended so far (whatever the policy)."""
        if self._writes > self._synced and not self._closed:
            await self._sync_through(self._writes)

    async def close(self) -> None:
        """Sync (unless the policy is ``never``) and close the files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._background is not None and not self._background.done():
            self._stop_background.set()
            with contextlib.suppress(Exception):
                await self._background
        async with self._sync_lock:
            if self._in_thread:
                await asyncio.gather(*self._in_thread, return_exceptions=True)
            segments = self._retired + ([self._segment] if self._segment else [])
            self._retired, self._segment = [], None
            if self._policy is FsyncPolicy.NEVER:
                for segment in segments:
                    close_quietly(segment.fd)
            else:
                try:
                    await self._in_fsync_thread(
                        sync_files, [(s.fd, not s.abandoned) for s in segments], None
                    )
                except OSError as exc:
                    log.error("event log: final fsync failed: %s", exc)
        if self._id_lock_fd is not None:
            close_quietly(self._id_lock_fd)
            self._id_lock_fd = None
        self._fsync_thread.shutdown(wait=False)
        _writers.discard(self)

    # -- writing --------------------------------------------------------------------------

    def _prepare_segment(self) -> _OpenSegment:
        """The segment to append to: a new one at start, after rotation or to recover."""
        if self._forked:
            raise RuntimeError(
                "this event log writer was opened by the parent process; open one per process"
            )
        if self._closed:
            raise EventLogUnavailable("the event log writer is closed")
        if self._failure is not None and time.monotonic() < self._retry_at:
            raise EventLogUnavailable(f"event log unavailable: {self._failure}")
        if self._segment is not None:
            self._retire(self._segment)
            self._segment = None
        try:
            segment = self._open_next_segment()
        except OSError as exc:
            self._record_failure(exc)
            raise EventLogUnavailable(f"event log unavailable: {self._failure}") from exc
        self._segment = segment
        return segment

    def _open_next_segment(self) -> _OpenSegment:
        # Only the last folder level is recreated: if the data directory itself is gone (an
        # unmounted disk) we must not start writing onto whatever is underneath.
        self._dir.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        seq = self._next_seq
        self._next_seq += 1  # never reuse a number, even if this attempt fails half-way
        if self._id_lock_fd is not None:
            write_seq_counter(self._id_lock_fd, seq)
        name = segment_name(self.writer_id, seq)
        fd = create_segment(self._dir, name, sync_directory=self._policy is not FsyncPolicy.NEVER)
        self.stats.segments_opened += 1
        return _OpenSegment(name=name, fd=fd, size=HEADER_SIZE)

    def _write_frame(self, segment: _OpenSegment, frame: bytes) -> None:
        start = segment.size
        try:
            write_all(segment.fd, frame)
        except OSError as exc:
            self._abandon(segment, start, getattr(exc, "written", 0), exc)
            raise EventLogUnavailable(f"event log unavailable: {self._failure}") from exc
        segment.size = start + len(frame)
        if self._failure is not None:
            log.warning("event log: writes succeed again (segment %s)", segment.name)
            self._failure = None
            self._backoff = 0.0

    def _abandon(self, segment: _OpenSegment, start: int, written: int, exc: OSError) -> None:
        """A write failed: cut off what got in and stop using the segment."""
        if written:
            try:
                os.ftruncate(segment.fd, start)
            except OSError as trunc_exc:
                # The torn frame stays at the end of a segment nobody appends to any more;
                # readers skip it once the segment is final. It is never delivered.
                log.error("event log: cannot cut a torn frame off %s: %s", segment.name, trunc_exc)
        self._segment = None
        segment.abandoned = True
        self._retire(segment)
        self._record_failure(exc)

    def _retire(self, segment: _OpenSegment) -> None:
        if not self._in_thread and (self._policy is FsyncPolicy.NEVER or segment.abandoned):
            # Nothing to sync (or nothing worth syncing) and no fsync thread that could still
            # be using the descriptor: close now, so a deleted file's space is freed at once.
            close_quietly(segment.fd)
        else:
            self._retired.append(segment)  # synced and closed by the next sync

    def _record_failure(self, exc: OSError) -> None:
        was_healthy = self._failure is None
        self.stats.failures += 1
        self._failure = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename:
            self._failure += f" ({os.path.basename(str(exc.filename))})"
        self._backoff = (
            min(self._max_backoff, self._backoff * 2) if self._backoff else self._first_backoff
        )
        self._retry_at = time.monotonic() + self._backoff
        if was_healthy:
            log.error("event log: write failed, refusing events until it recovers: %s", exc)

    # -- syncing --------------------------------------------------------------------------

    async def _in_fsync_thread(self, fn: Callable[..., _T], *args: object) -> _T:
        # Shielded and tracked: if the awaiting request is cancelled, the thread still finishes
        # before anything closes the descriptors it uses (close() waits for it).
        future = asyncio.get_running_loop().run_in_executor(self._fsync_thread, fn, *args)
        self._in_thread.add(future)
        future.add_done_callback(self._in_thread.discard)
        return await asyncio.shield(future)

    async def _sync_through(self, target: int) -> None:
        """Return once append number ``target`` is on disk. Appends arriving while an fsync runs
        wait for the next one, which then covers all of them (group commit)."""
        async with self._sync_lock:
            if target <= self._sync_failed_through:
                raise EventLogUnavailable(f"event log unavailable: {self._failure}")
            if self._synced >= target and not self._retired:
                return
            upto = self._writes
            retired, self._retired = self._retired, []
            current = self._segment
            try:
                await self._in_fsync_thread(
                    sync_files,
                    [(s.fd, not s.abandoned) for s in retired],
                    current.fd if current else None,
                )
            except OSError as exc:
                # After a failed fsync the kernel may have dropped the dirty pages: nothing
                # written so far can be promised, and the segment is not used any further.
                self._sync_failed_through = self._writes
                if current is not None and self._segment is current:
                    self._segment = None
                    current.abandoned = True
                    self._retired.append(current)
                self._record_failure(exc)
                raise EventLogUnavailable(f"event log unavailable: {self._failure}") from exc
            self._synced = max(self._synced, upto)
            self.stats.fsyncs += 1

    def _start_background(self) -> None:
        self._background = asyncio.get_running_loop().create_task(
            self._run_background(), name="eventlog-background-fsync"
        )

    async def _run_background(self) -> None:
        period = self._interval if self._policy is FsyncPolicy.INTERVAL else 1.0
        while not self._stop_background.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_background.wait(), timeout=period)
            if self._closed:
                return
            never = self._policy is FsyncPolicy.NEVER
            if self._retired or (not never and self._writes > self._synced):
                # interval: the periodic fsync; any policy: close the segments retired while an
                # fsync thread was running
                with contextlib.suppress(EventLogUnavailable):
                    await self._sync_through(self._writes)
            elif never:
                self._check_not_removed()

    def _check_not_removed(self) -> None:
        """With ``never`` there is no fsync to notice it: someone removed our segment file (or
        the whole folder). Stop appending into a file nobody can find."""
        segment = self._segment
        if segment is None:
            return
        try:
            removed = os.fstat(segment.fd).st_nlink == 0
        except OSError as exc:
            removed, error = True, exc
        else:
            error = FileNotFoundError(errno.ENOENT, "the segment file was removed")
        if removed:
            self._segment = None
            segment.abandoned = True
            self._retire(segment)
            self._record_failure(error)
