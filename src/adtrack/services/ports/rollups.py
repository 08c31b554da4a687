"""Where the aggregator commits a batch: its rollup delta, its archive files and the log
positions it read, in one transaction, exactly once by log position.

Adapter: ``adapters/sql/rollup_sink.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from adtrack.domain.rollup_counters import Counters
from adtrack.services.ports.raw_events import RawFile

__all__ = [
    "ConversionCandidate",
    "ConversionHistory",
    "ConversionVerdicts",
    "InvalidKey",
    "PositionConflict",
    "RollupDelta",
    "RollupKey",
    "RollupSink",
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


@dataclass
class RollupDelta:
    """What a set of events adds to the rollup tables."""

    rows: dict[RollupKey, Counters] = field(default_factory=dict)
    invalid: dict[InvalidKey, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.invalid)


class ConversionCandidate(NamedTuple):
    """A conversion the collector attributed, which the aggregator still has to count or not
    (``aggregator/conversion_verdicts.py``)."""

    event_id: str
    ts: int  # epoch microseconds
    conversion_pixel_id: int
    order_id: str | None
    source_event_id: str | None  # the click


@dataclass(frozen=True)
class ConversionHistory:
    """What the store knows that decides the candidates of a batch."""

    # the verdicts of candidates decided before (a batch read again): event id -> reason
    # (None: counted)
    verdicts: Mapping[str, str | None]
    # each candidate pixel's min_minutes_per_conversion (None: one per click; a pixel the
    # catalogue no longer has is not here: one per click too)
    min_minutes: Mapping[int, int | None]
    # (pixel, order id) -> the event id of the conversion that counted it
    orders: Mapping[tuple[int, str], str]
    # (pixel, click event id) -> the times and event ids of the conversions it counted
    counted: Mapping[tuple[int, str], Sequence[tuple[int, str]]]


@dataclass
class ConversionVerdicts:
    """The verdicts of a batch's candidates: written with the batch, in its transaction."""

    reasons: dict[str, str | None] = field(default_factory=dict)  # every candidate's
    new: list[ConversionCandidate] = field(default_factory=list)  # those decided now


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
        conversions: ConversionVerdicts | None = None,
    ) -> None:
        """Commit a batch atomically: for every source in ``positions``, move its committed
        position from ``starts[source]`` (0: never committed) to ``positions[source]`` by
        compare-and-set, add ``delta`` to the rollups, list ``raw_files`` as the archive
        files holding its raw events and keep the verdicts of its new ``conversions`` (and the
        order ids they counted). ``positions`` None: a reader that keeps no positions
        (at-least-once). Raises :class:`PositionConflict`, having written nothing, when a
        source's committed position is not its start; any other error (two aggregators counting
        one order at the same time) also writes nothing, and the batch is decided again."""
        ...

    def conversion_history(self, candidates: Sequence[ConversionCandidate]) -> ConversionHistory:
        """What decides ``candidates``: their earlier verdicts, their pixels' rules, the
        order ids and the clicks' conversions counted before."""
        ...

    def load_checkpoints(self) -> dict[str, int]:
        """The committed positions (source -> position after the last committed batch)."""
        ...

    def forget_checkpoints(self, sources: Sequence[str]) -> None:
        """Drop positions of sources that no longer exist (pruned segments)."""
        ...
