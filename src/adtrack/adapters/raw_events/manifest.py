"""The ``raw_event_files`` manifest: which archive files are committed, and for which hour.

A file the manifest does not list does not exist for readers (its batch never committed, or a
compaction replaced it). The manifest's ``hour`` is the start of the file's UTC hour; the
archive's :class:`RawFile` carries the same hour as an epoch hour index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert

from adtrack.adapters.sql import tables as t
from adtrack.domain.epoch_hours import EPOCH, HOUR_MICROS, hour_start
from adtrack.domain.utc import as_utc
from adtrack.services.ports import RawFile

__all__ = [
    "HOUR_MICROS",
    "hour_index",
    "hour_start",
    "manifest_rows",
    "register_files",
]


def hour_index(moment: datetime) -> int:
    """The epoch hour ``moment`` falls in (naive values are read as UTC)."""
    return int((as_utc(moment) - EPOCH) // timedelta(hours=1))


def manifest_rows(files: Iterable[RawFile], created_at: datetime) -> list[dict[str, object]]:
    """The manifest rows listing ``files``."""
    return [
        {
            "path": f.path,
            "hour": hour_start(f.hour),
            "rows": f.rows,
            "clicks": f.clicks,
            "bytes": f.bytes,
            "created_at": created_at,
        }
        for f in files
    ]


def register_files(conn: Connection, files: Sequence[RawFile], now: datetime | None = None) -> None:
    """List ``files`` in the manifest, in the caller's transaction (the one that commits the
    batch the files hold)."""
    if files:
        conn.execute(insert(t.raw_event_files), manifest_rows(files, now or datetime.now(UTC)))
