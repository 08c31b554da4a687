"""How the local event log's writer gets its appends onto the disk.

:class:`FsyncPolicy` is the promise an ``append`` keeps (``ADTRACK_FSYNC``); :func:`sync_files`
is the ``fdatasync`` work of the writer's fsync thread, which runs off the event loop so that
appends arriving meanwhile share the next one (group commit, in ``local_writer.py``).
"""

from __future__ import annotations

import errno
import os
from enum import StrEnum

from adtrack.adapters.eventlog.segment_files import close_quietly

__all__ = ["FsyncPolicy", "sync_files"]


class FsyncPolicy(StrEnum):
    ALWAYS = "always"  # fdatasync before append returns: survives power loss
    INTERVAL = "interval"  # background fdatasync: power loss may lose the last interval
    NEVER = "never"  # the OS flushes when it likes: survives process crashes only


def sync_files(retired: list[tuple[int, bool]], current: int | None) -> None:
    """fdatasync (and close) the retired segments, then fdatasync the current one. Runs in the
    writer's fsync thread. ``retired`` holds ``(fd, must_succeed)`` pairs."""
    first_error: OSError | None = None
    for fd, must_succeed in retired:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            if must_succeed:
                first_error = first_error or exc
        finally:
            close_quietly(fd)
    if current is not None:
        os.fdatasync(current)
        if os.fstat(current).st_nlink == 0:
            raise FileNotFoundError(errno.ENOENT, "the segment file was removed")
    if first_error is not None:
        raise first_error
