"""The fold of events into hourly rollup deltas (no I/O).

A rollup row is keyed by (hour UTC, imp_type, tracker, advertiser, line item, publisher,
placement or 0, payment rule or 0). The audience rollups add the same counters by (hour,
imp_type, advertiser, line item) and country (``GeoKey``), or device type, OS and browser
(``DeviceKey``), with "" for an unknown value. Valid events add to ``imps`` (imp_type 9) or
``clicks`` (imp_type 10) and to media cost and booked revenue; invalid events add only to
``invalid_imps`` / ``invalid_clicks`` and, by reason, to the invalid-traffic rollup.
Attributed conversions (imp_type 11, keyed by the click they are attributed to) add to the
conversion counters when valid (and, the same counters, to the conversion pixel rollups by
their pixel: ``PixelKey``), and by reason to the invalid-traffic rollup when not;
unattributed ones (and those the aggregator found duplicates, see ``conversion_verdicts.py``)
are kept in the raw-event archive only.

Viewability beacons (events with a ``view_state``) count nothing themselves: each becomes a view
of its impression (``RollupDelta.views``, a viewable one also a measured one), keyed like the
impression (the beacon carries its time and ids), which the sink counts once per impression and
state.

The fold runs on a batch's Arrow table (``event_batch.py``): the per-event work is vectorised
(a hash aggregation in Arrow's C++), and only the distinct keys reach Python. The delta and its
keys are the rollup sink's records (``services/ports/rollups.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.events import (
    POST_CLICK,
    POST_VIEW,
    VIEW_MEASURED,
    VIEW_STATES,
    VIEW_VIEWABLE,
    Event,
)
from adtrack.domain.model import ImpType
from adtrack.domain.rollup_counters import Counters, add_counters
from adtrack.services.ports import (
    DeviceKey,
    GeoKey,
    InvalidKey,
    PixelKey,
    RollupDelta,
    RollupKey,
    ViewKey,
    ViewRows,
)
from adtrack.services.raw_event_columns import epoch_hour_indices, events_to_table

__all__ = ["UNSPECIFIED_REASON", "fold", "fold_table"]

UNSPECIFIED_REASON = "unspecified"  # an invalid event that carries no reason

_CLICK = int(ImpType.EXTERNAL_CLICK)
_CONVERSION = int(ImpType.CONVERSION)
_IMPRESSION = int(ImpType.EXTERNAL_IMPRESSION)
_Key = TypeVar("_Key", RollupKey, GeoKey, DeviceKey, PixelKey)


def fold(events: Sequence[Event], into: RollupDelta | None = None) -> RollupDelta:
    """Add ``events`` to ``into`` (a new delta by default) and return it."""
    return fold_table(events_to_table(events), into)


def fold_table(table: pa.Table, into: RollupDelta | None = None) -> RollupDelta:
    """Add the events of ``table`` (``RAW_EVENT_SCHEMA``) to ``into`` and return it."""
    delta = into if into is not None else RollupDelta()
    conversion = pc.equal(table["imp_type"], _CONVERSION)
    has_conversions = pc.any(conversion).as_py()
    if has_conversions:
        # an unattributed conversion is in the archive only: it has nothing to count by
        attributed = pc.is_valid(table["attribution"])
        table = table.filter(pc.or_(pc.invert(conversion), attributed))
        conversion = pc.equal(table["imp_type"], _CONVERSION)
    if table.num_rows == 0:
        return delta
    hour = epoch_hour_indices(table["ts"])
    beacon = pc.is_valid(table["view_state"])
    if pc.any(beacon).as_py():
        _fold_views(table.filter(beacon), hour.filter(beacon), delta)
        hits = pc.invert(beacon)
        table, hour = table.filter(hits), hour.filter(hits)
        if table.num_rows == 0:
            return delta
        conversion = pc.equal(table["imp_type"], _CONVERSION)
    invalid = table["invalid"]
    valid = pc.invert(invalid)
    click = pc.equal(table["imp_type"], _CLICK)
    impression = pc.equal(table["imp_type"], _IMPRESSION)
    zero = pa.scalar(0, pa.int64())
    hit_money = pc.and_(valid, pc.invert(conversion)) if has_conversions else valid
    counted = pc.and_(valid, conversion)
    attribution = table["attribution"]
    none = pa.repeat(zero, table.num_rows)  # the conversion counters of a batch without any
    parts = pa.table(
        {
            "hour": hour,
            "imp_type": table["imp_type"],
            "tracker_id": table["tracker_id"],
            "advertiser_id": table["advertiser_id"],
            "line_item_id": table["line_item_id"],
            "publisher_id": table["publisher_id"],
            "placement_id": pc.fill_null(table["placement_id"], 0),
            "payment_rule_id": pc.fill_null(table["payment_rule_id"], 0),
            "imps": pc.and_(valid, impression).cast(pa.int64()),
            "clicks": pc.and_(valid, click).cast(pa.int64()),
            "invalid_imps": pc.and_(invalid, impression).cast(pa.int64()),
            "invalid_clicks": pc.and_(invalid, click).cast(pa.int64()),
            "media_cost_micros": pc.if_else(hit_money, table["media_cost_micros"], zero),
            "booked_revenue_micros": pc.if_else(hit_money, table["booked_revenue_micros"], zero),
            "conversions": counted.cast(pa.int64()) if has_conversions else none,
            "post_click_conversions": _count_of(counted, attribution, POST_CLICK, none),
            "post_view_conversions": _count_of(counted, attribution, POST_VIEW, none),
            "conversion_revenue_micros": (
                pc.if_else(counted, table["booked_revenue_micros"], zero)
                if has_conversions
                else none
            ),
        }
    )
    _sum_into(parts, RollupKey._fields, RollupKey._make, delta.rows)
    audience = parts.select([*_AUDIENCE_BASE, *_SUMS])
    for column in _AUDIENCE_TEXTS:
        audience = audience.append_column(column, pc.fill_null(table[column], ""))
    _sum_into(audience, GeoKey._fields, GeoKey._make, delta.geo)
    _sum_into(audience, DeviceKey._fields, DeviceKey._make, delta.devices)
    if pc.any(invalid).as_py():
        _fold_invalid(parts.filter(invalid), table["invalid_reason"].filter(invalid), delta)
    if has_conversions and pc.any(counted).as_py():
        # the same counted conversions again, by pixel: exactly what they add to ``rows``
        pixels = parts.filter(counted).append_column(
            "conversion_pixel_id",
            pc.fill_null(table["conversion_pixel_id"].filter(counted), 0),
        )
        _sum_into(pixels, PixelKey._fields, PixelKey._make, delta.pixels)
    return delta


def _count_of(
    counted: pa.ChunkedArray, attribution: pa.ChunkedArray, kind: str, none: pa.Array
) -> pa.ChunkedArray | pa.Array:
    """1 for each counted conversion attributed ``kind``; ``none`` when none is."""
    if not pc.any(counted).as_py():
        return none
    return pc.fill_null(pc.and_(counted, pc.equal(attribution, kind)), False).cast(pa.int64())


def _fold_views(beacons: pa.Table, hour: pa.Array, delta: RollupDelta) -> None:
    """The views the beacons report, each with its impression's rows (few per batch: at most
    two per measured impression, so a plain loop)."""
    valid = pc.invert(beacons["invalid"])
    columns = pa.table(
        {
            "hour": hour,
            "imp_type": beacons["imp_type"],
            "tracker_id": beacons["tracker_id"],
            "advertiser_id": beacons["advertiser_id"],
            "line_item_id": beacons["line_item_id"],
            "publisher_id": beacons["publisher_id"],
            "placement_id": pc.fill_null(beacons["placement_id"], 0),
            "payment_rule_id": pc.fill_null(beacons["payment_rule_id"], 0),
            **{name: pc.fill_null(beacons[name], "") for name in _AUDIENCE_TEXTS},
            "impression_event_id": beacons["impression_event_id"],
            "view_state": beacons["view_state"],
        }
    ).filter(valid)
    data = columns.to_pydict()
    views = delta.views
    for i, (impression, state) in enumerate(
        zip(data["impression_event_id"], data["view_state"], strict=True)
    ):
        if impression is None or state not in _VIEW_STATES:
            continue  # (not a beacon the collector writes)
        rows = ViewRows(
            RollupKey._make(data[name][i] for name in RollupKey._fields),
            GeoKey._make(data[name][i] for name in GeoKey._fields),
            DeviceKey._make(data[name][i] for name in DeviceKey._fields),
        )
        views[ViewKey(impression, state)] = rows
        if state == VIEW_VIEWABLE:  # viewable implies measured
            views.setdefault(ViewKey(impression, VIEW_MEASURED), rows)


_VIEW_STATES = frozenset(VIEW_STATES)


def _sum_into(
    parts: pa.Table,
    key_fields: Sequence[str],
    make: Callable[[Iterable[object]], _Key],
    rows: dict[_Key, Counters],
) -> None:
    """Add ``parts``' counters summed per distinct ``key_fields`` (a key NamedTuple's fields,
    ``make`` its constructor) to ``rows``."""
    columns = (
        parts.group_by(list(key_fields), use_threads=False)
        .aggregate([(name, "sum") for name in _SUMS])
        .to_pydict()
    )
    keys = zip(*(columns[name] for name in key_fields), strict=True)
    values = zip(*(columns[f"{name}_sum"] for name in _SUMS), strict=True)
    for key, summed in zip(keys, values, strict=True):
        add_counters(rows, make(key), Counters._make(summed + _NOT_SUMMED_HERE))


def _fold_invalid(parts: pa.Table, reasons: pa.ChunkedArray, delta: RollupDelta) -> None:
    counted = (
        pa.table(
            {
                "hour": parts["hour"],
                "imp_type": parts["imp_type"],
                "tracker_id": parts["tracker_id"],
                "reason": pc.fill_null(reasons, UNSPECIFIED_REASON),
            }
        )
        .group_by(list(InvalidKey._fields), use_threads=False)
        .aggregate([([], "count_all")])
        .to_pydict()
    )
    invalid = delta.invalid
    keys = zip(*(counted[name] for name in InvalidKey._fields), strict=True)
    for key, count in zip(keys, counted["count_all"], strict=True):
        reason_key = InvalidKey._make(key)
        invalid[reason_key] = invalid.get(reason_key, 0) + count


# The counters a hit adds to; the viewability counters come from beacons, counted once per
# impression and state by the rollup sink (``RollupDelta.views``).
_VIEW_COUNTERS: tuple[str, ...] = ("viewable_imps", "view_measured_imps")
_SUMS: tuple[str, ...] = tuple(name for name in Counters._fields if name not in _VIEW_COUNTERS)
_NOT_SUMMED_HERE: tuple[int, ...] = (0,) * len(_VIEW_COUNTERS)
if Counters._fields != (*_SUMS, *_VIEW_COUNTERS):
    raise RuntimeError("the viewability counters must be the last of Counters")
_AUDIENCE_BASE = ("hour", "imp_type", "advertiser_id", "line_item_id")
_AUDIENCE_TEXTS = ("country", "device_type", "os", "browser")
