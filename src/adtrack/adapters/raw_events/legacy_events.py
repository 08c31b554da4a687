"""Carrying raw events over from the legacy ``events`` table into the raw-event archive.

Raw events used to be rows of the SQL ``events`` table; they now live in the archive. This
moves the rows that are still there, in chunks of ``chunk_rows`` taken in ``event_id`` order:
each chunk is staged under a key made of its first and last ids (so a chunk tried again after
a crash writes the same files), then ONE transaction lists its files in the manifest and
deletes its rows. A chunk is therefore either still in the table or in the archive, never
both and never neither, and running it again (or in several processes at once) moves nothing
twice. ``adtrack events archive`` runs it; the aggregator runs it when it starts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, RowMapping, delete, select
from sqlalchemy.exc import IntegrityError

from adtrack.adapters.raw_events.manifest import register_files
from adtrack.adapters.sql import tables as t
from adtrack.domain.events import Event
from adtrack.domain.utc import as_utc
from adtrack.services.ports import RawEventArchive
from adtrack.services.raw_event_columns import events_to_table

__all__ = ["CARRY_OVER_CHUNK_ROWS", "carry_over_legacy_events"]

log = logging.getLogger(__name__)

CARRY_OVER_CHUNK_ROWS = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _ChunkChanged(Exception):
    """The chunk's rows changed between reading and deleting them."""


def carry_over_legacy_events(
    engine: Engine, archive: RawEventArchive, *, chunk_rows: int = CARRY_OVER_CHUNK_ROWS
) -> int:
    """Move every row of the ``events`` table into ``archive``; returns how many were moved
    by this call (0 when the table is empty)."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    e = t.events
    moved = 0
    retried: str | None = None
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(e).order_by(e.c.event_id).limit(chunk_rows)).all()
        if not rows:
            break
        events = [_event(row._mapping) for row in rows]
        first, last = events[0].event_id, events[-1].event_id
        files = archive.stage(
            events_to_table(events), f"legacy-events\n{first}\n{last}\n{len(events)}"
        )
        try:
            with engine.begin() as conn:
                register_files(conn, files)
                gone = conn.execute(
                    delete(e).where(e.c.event_id >= first, e.c.event_id <= last)
                ).rowcount
                if gone != len(events):
                    raise _ChunkChanged
        except (IntegrityError, _ChunkChanged):
            # Another process moved this chunk first (its files are the ones just written),
            # or rows arrived meanwhile: read the table again; give up if it happens twice
            # in a row on the same chunk.
            if retried == first:
                raise
            retried = first
            continue
        retried = None
        moved += len(events)
        log.info("carried %d raw events over from the events table into the archive", moved)
    return moved


_TS = Event._fields.index("ts")


def _event(row: RowMapping) -> Event:
    # (the table predates the audience and viewability fields: they are None)
    values = [row.get(name) for name in Event._fields]
    values[_TS] = (as_utc(row["ts"]) - _EPOCH) // _MICROSECOND
    return Event._make(values)
