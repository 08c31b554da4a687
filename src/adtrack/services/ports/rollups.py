"""Where the aggregator commits a batch: its rollup delta, its archive files and the log
positions it read, in one transaction, exactly once by log position.

Adapter: ``adapters/sql/rollup_sink.py``; the retention of the conversion verdicts and order
ids it keeps (``ConversionBookkeepingRetention``): ``adapters/sql/conversion_retention.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from adtrack.domain.events import VIEW_MEASURED, VIEW_VIEWABLE
from adtrack.domain.rollup_counters import Counters, add_counters
from adtrack.services.ports.raw_events import RawFile

__all__ = [
    "ConversionBookkeepingRetention",
    "ConversionCandidate",
    "ConversionHistory",
    "ConversionVerdicts",
    "DeviceKey",
    "GeoKey",
    "InvalidKey",
    "PixelKey",
    "PositionConflict",
    "RollupDelta",
    "RollupKey",
    "RollupSink",
    "ViewKey",
    "ViewRows",
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


# The audience rollups: who saw the ads (country; device type, OS and browser), keyed by the
# few catalogue dimensions they combine with (imp type, advertiser, line item) so that a 90-day
# report reads few rows. Text dimensions hold "" for unknown (the key must not be null).
class GeoKey(NamedTuple):
    hour: int
    imp_type: int
    advertiser_id: int
    line_item_id: int
    country: str  # ISO 3166-1 alpha-2, "" = unknown


class DeviceKey(NamedTuple):
    hour: int
    imp_type: int
    advertiser_id: int
    line_item_id: int
    device_type: str  # "" = unknown
    os: str  # "" = unknown
    browser: str  # "" = unknown


# The conversion pixel rollups: the conversions the aggregator counts, by the pixel that
# recorded them and the ids of the click or impression they are attributed to (imp type is
# always 11). Only the conversion counters (``CONVERSION_PIXEL_SUMS``) are kept.
class PixelKey(NamedTuple):
    hour: int
    conversion_pixel_id: int
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


class ViewRows(NamedTuple):
    """The rows a view of an impression adds to: its impression's."""

    rollup: RollupKey
    geo: GeoKey
    device: DeviceKey


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
    geo: dict[GeoKey, Counters] = field(default_factory=dict)
    devices: dict[DeviceKey, Counters] = field(default_factory=dict)
    views: dict[ViewKey, ViewRows] = field(default_factory=dict)
    # the counted conversions again, by pixel (their other counters are 0)
    pixels: dict[PixelKey, Counters] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.rows or self.invalid or self.geo or self.devices or self.views or self.pixels
        )

    def counted_views(
        self, new: Sequence[ViewKey]
    ) -> tuple[dict[RollupKey, Counters], dict[GeoKey, Counters], dict[DeviceKey, Counters]]:
        """``rows``, ``geo`` and ``devices`` plus one for each of the ``new`` views (of
        ``views``) on its counter, in each of its impression's rows."""
        rows, geo, devices = dict(self.rows), dict(self.geo), dict(self.devices)
        for view in new:
            keys = self.views[view]
            one = Counters(**{_VIEW_COUNTER[view.view_state]: 1})
            add_counters(rows, keys.rollup, one)
            add_counters(geo, keys.geo, one)
            add_counters(devices, keys.device, one)
        return rows, geo, devices


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


class ConversionBookkeepingRetention(Protocol):
    """Forgetting the conversion verdicts, and the order ids they counted, that no conversion
    to come can be decided by any more (``services/retention.py`` says when that is)."""

    def purge(self, before_us: int) -> int:
        """Delete the verdicts of conversions older than ``before_us`` (epoch microseconds)
        and the order ids those conversions counted, a bounded batch of rows per transaction;
        returns how many verdicts were deleted."""
        ...


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
