"""Folders and files of the data directory: only adtrack's own user may read them (it holds the
database, the raw events with addresses and user agents, and the session secret), and names
created in them are made durable."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "fsync_directory",
    "make_private_dir",
    "touch_private_file",
]

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path, *, tighten: bool = False) -> None:
    """Create ``path`` and any missing parents with mode 0700.

    With ``tighten``, an existing ``path`` that we own and that others may enter is narrowed to
    0700 too (a data directory made by an older version or by hand); folders we do not own are
    left alone.
    """
    missing: list[Path] = []
    for level in (path, *path.parents):
        if level.exists():
            break
        missing.append(level)
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            level.mkdir(mode=PRIVATE_DIR_MODE)
    if not tighten or missing:
        return
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        try:
            path.chmod(PRIVATE_DIR_MODE)
        except OSError as exc:  # a read-only disk: the writer reports that when it writes
            log.warning("cannot narrow the permissions of %s to 0700: %s", path, exc)
        else:
            log.info("narrowed the permissions of %s to 0700", path)


def touch_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (files created later next to it,
    such as SQLite's -wal and -shm, copy its mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make created/renamed names in ``directory`` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
