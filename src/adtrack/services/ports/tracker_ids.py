"""Which tracker ids are taken, deleted trackers included (their ids stay theirs: reports keep
their names), for imports that keep the ids their tags carry.

Adapter: ``adapters/sql/tracker_ids.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from adtrack.domain.model import TrackerType

__all__ = ["TakenTrackerId", "TrackerIds"]


@dataclass(frozen=True, slots=True)
class TakenTrackerId:
    id: int
    tracker_type: TrackerType
    name: str
    original_id: int | None
    deleted: bool


class TrackerIds(Protocol):
    def taken(self, ids: Collection[int]) -> Mapping[int, TakenTrackerId]:
        """The trackers holding any of ``ids`` (deleted ones too)."""
        ...
