"""Where the aggregator commits a batch: its rollup delta, its archive files and the log
positions it read, in one transaction, exactly once by log position.

Adapter: ``adapters/sql/rollup_sink.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from adtrack.domain.events import VIEW_MEASURED, VIEW_VIEWABLE
from adtrack.domain.rollup_counters import Counters
from adtrack.services.ports.raw_events import RawFile

__all__ = [
    "InvalidKey",
    "PositionConflict",
    "RollupDelta",
    "RollupKey",
    "RollupSink",
    "ViewKey",
]


# Keys hold the hour as an index (epoch hours): the sink turns each distinct one into a datetime
# once.
class RollupKey(NamedTuple):
    hour: int
    imp_type: int
    tracker_id: int
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int  # 0 = none
    payment_rule_id: int  # 0 = none


class InvalidKey(NamedTuple):
    hour: int
    imp_type: int
    tracker_id: int
    reason: str


class ViewKey(NamedTuple):
    """One viewability state of one impression: counted once, however many beacons say it."""

    impression_event_id: str
    view_state: str  # "measured" | "viewable" (domain/view_tokens.py)


# The counter each state adds one to.
_VIEW_COUNTER = {VIEW_MEASURED: "view_measured_imps", VIEW_VIEWABLE: "viewable_imps"}


@dataclass
class RollupDelta:
    """What a set of events adds to the rollup tables.

    ``views`` are the viewability states the events' beacons report (a viewable one also as
    measured), each with its impression's rollup key: the sink adds to the rollups only those it
    has not counted before (:meth:`counted_views`), in the same transaction.
    """

    rows: dict[RollupKey, Counters] = field(default_factory=dict)
    invalid: dict[InvalidKey, int] = field(default_factory=dict)
    views: dict[ViewKey, RollupKey] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.invalid or self.views)

    def counted_views(self, new: Sequence[ViewKey]) -> dict[RollupKey, Counters]:
        """``rows`` plus one for each of the ``new`` views (of ``views``) on its counter."""
        rows = dict(self.rows)
        for view in new:
            key = self.views[view]
            one = Counters(**{_VIEW_COUNTER[view.view_state]: 1})
            total = rows.get(key)
            rows[key] = one if total is None else total.plus(one)
        return rows


class PositionConflict(Exception):
    """A source's committed position is not where the batch starts: it was committed already
    (in part or whole). Nothing of the batch was written; re-read from the committed positions."""


class RollupSink(Protocol):
    """The rollups and log positions of one database (blocking calls: run them in a thread)."""

    def write(
        self,
        delta: RollupDelta,
        *,
        starts: Mapping[str, int],
        positions: Mapping[str, int] | None,
        raw_files: Sequence[RawFile] = (),
    ) -> None:
        """Commit a batch atomically: for every source in ``positions``, move its committed
        position from ``starts[source]`` (0: never committed) to ``positions[source]`` by
        compare-and-set, add ``delta`` to the rollups and list ``raw_files`` as the archive
        files holding its raw events. ``positions`` None: a reader that keeps no positions
        (at-least-once). Raises :class:`PositionConflict`, having written nothing, when a
        source's committed position is not its start."""
        ...

    def load_checkpoints(self) -> dict[str, int]:
        """The committed positions (source -> position after the last committed batch)."""
        ...

    def forget_checkpoints(self, sources: Sequence[str]) -> None:
        """Drop positions of sources that no longer exist (pruned segments)."""
        ...
