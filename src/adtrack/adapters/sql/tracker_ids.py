"""Taken tracker ids in SQL (the ``TrackerIds`` port): the ``trackers`` rows holding them,
soft-deleted ones included."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Engine, select

from adtrack.adapters.sql import tables as t
from adtrack.domain.model import TrackerType
from adtrack.services.ports import TakenTrackerId

__all__ = ["SqlTrackerIds"]

_CHUNK = 5000


class SqlTrackerIds:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def taken(self, ids: Collection[int]) -> Mapping[int, TakenTrackerId]:
        c = t.trackers.c
        ordered = sorted(ids)
        found: dict[int, TakenTrackerId] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                query = select(c.id, c.tracker_type, c.name, c.original_id, c.deleted_at).where(
                    c.id.in_(chunk)
                )
                for row in conn.execute(query):
                    found[row.id] = TakenTrackerId(
                        id=row.id,
                        tracker_type=TrackerType(row.tracker_type),
                        name=row.name,
                        original_id=row.original_id,
                        deleted=row.deleted_at is not None,
                    )
        return found
