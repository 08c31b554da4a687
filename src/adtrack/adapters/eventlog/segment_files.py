"""Naming, listing, creation and liveness of the local event log's segment files.

Each writer (one per process) owns the files ``<writer_id>-<seq:08d>.seg`` and holds an
exclusive ``flock`` on the one it is appending to. A segment is *final* (nothing will ever be
appended to it again) when its writer has a later segment, or when nobody holds its lock: the
kernel drops the lock when the writer closes it or its process dies, even by ``kill -9``.
``flock`` locks belong to an open file, not to a process, so a reader in the writer's own
process sees the lock too. (Local filesystems only: ``flock`` is not reliable over NFS.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

from adtrack.adapters.eventlog.segment_format import SEGMENT_HEADER
from adtrack.adapters.private_files import PRIVATE_FILE_MODE, fsync_directory

SEGMENT_SUFFIX = ".seg"
_TEMP_SUFFIX = ".tmp"
_WRITER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SEGMENT_NAME = re.compile(r"^(?P<writer>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})-(?P<seq>\d{8,})\.seg$")


def check_writer_id(writer_id: str) -> str:
    if not _WRITER_ID.match(writer_id):
        raise ValueError(
            f"writer id {writer_id!r}: use 1-64 letters, digits, '_', '.', '-' (not first)"
        )
    return writer_id


def segment_name(writer_id: str, seq: int) -> str:
    return f"{writer_id}-{seq:08d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> tuple[str, int] | None:
    match = _SEGMENT_NAME.match(name)
    if match is None:
        return None
    return match["writer"], int(match["seq"])


def temp_name(name: str) -> str:
    """Where a segment is prepared (and locked) before it appears under its real name."""
    return f".{name}{_TEMP_SUFFIX}"


def list_segments(directory: Path) -> dict[str, list[tuple[int, str]]]:
    """Segment names per writer id, oldest first. A missing directory has no segments."""
    by_writer: dict[str, list[tuple[int, str]]] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return by_writer
    for name in names:
        parsed = parse_segment_name(name)
        if parsed is not None:
            by_writer.setdefault(parsed[0], []).append((parsed[1], name))
    for segments in by_writer.values():
        segments.sort()
    return by_writer


def highest_seq(directory: Path, writer_id: str) -> int:
    return max((seq for seq, _ in list_segments(directory).get(writer_id, [])), default=0)


def is_held_by_writer(path: Path) -> bool:
    """True while a live writer holds ``path``'s lock (so more frames may still arrive)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops our shared lock at once
    return False


def write_all(fd: int, data: bytes) -> int:
    """Write ``data`` fully; on an error, ``OSError.written`` says how much got in."""
    written = 0
    view = memoryview(data)
    try:
        while written < len(data):
            written += os.write(fd, view[written:])
    except OSError as exc:
        exc.written = written  # type: ignore[attr-defined]
        raise
    return written


def create_segment(directory: Path, name: str, *, sync_directory: bool) -> int:
    """Create the segment file ``name`` holding just its header; returns its descriptor, which
    holds the writer's lock. ``sync_directory``: fsync the folder so the name survives a power
    loss."""
    final_path = directory / name
    temp_path = directory / temp_name(name)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp_path)  # left by a crashed process with the same explicit id
    # Created and locked under a hidden name, then renamed: a reader never sees a segment
    # file that is not yet locked by its writer (it would think it final).
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        write_all(fd, SEGMENT_HEADER)
        os.rename(temp_path, final_path)
        if sync_directory:
            fsync_directory(directory)
    except BaseException:
        close_quietly(fd)  # if it was renamed, it is now a final, empty segment
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    return fd


def remove_stale_temp_files(directory: Path, now: float, min_age_seconds: float) -> None:
    """Delete segments that never got their real name (their writer died while creating
    them), once untouched for ``min_age_seconds`` and no longer locked."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if not (
                entry.name.startswith(".") and entry.name.endswith(SEGMENT_SUFFIX + _TEMP_SUFFIX)
            ):
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime >= min_age_seconds and not is_held_by_writer(
                    Path(entry.path)
                ):
                    os.unlink(entry.path)


class WriterIdInUse(RuntimeError):
    """Another live process already writes with this writer id."""


def lock_writer_id(directory: Path, writer_id: str) -> int:
    """Hold ``.<writer_id>.lock`` so two processes never append under the same id (the "a later
    segment exists" rule would break if two processes interleaved sequence numbers)."""
    fd = os.open(directory / f".{writer_id}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WriterIdInUse(f"writer id {writer_id!r} is in use by another process") from None
    return fd


def read_seq_counter(lock_fd: int) -> int:
    """The last sequence number recorded in a writer id's lock file (0 if none)."""
    text = os.pread(lock_fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


def write_seq_counter(lock_fd: int, seq: int) -> None:
    """Record ``seq`` as used: segment names are never reused, even after old segments are
    deleted, so a stored read position can never point into a different file."""
    os.pwrite(lock_fd, f"{seq:<31d}\n".encode("ascii"), 0)


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
