"""The fold of events into hourly rollup deltas (no I/O).

A rollup row is keyed by (hour UTC, imp_type, tracker, advertiser, line item, publisher,
placement or 0, payment rule or 0). Valid events add to ``imps`` (imp_type 9) or ``clicks``
(imp_type 10) and to media cost and booked revenue; invalid events add only to
``invalid_imps`` / ``invalid_clicks`` and, by reason, to the invalid-traffic rollup.
Attributed conversions (imp_type 11, keyed by the click they are attributed to) add to the
conversion counters when valid, and by reason to the invalid-traffic rollup when not;
unattributed ones (and those the aggregator found duplicates, see ``conversion_verdicts.py``)
are kept in the raw-event archive only.

The fold runs on a batch's Arrow table (``event_batch.py``): the per-event work is vectorised
(a hash aggregation in Arrow's C++), and only the distinct keys reach Python. The delta and its
keys are the rollup sink's records (``services/ports/rollups.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.events import POST_CLICK, POST_VIEW, Event
from adtrack.domain.model import ImpType
from adtrack.domain.rollup_counters import Counters
from adtrack.services.ports import InvalidKey, RollupDelta, RollupKey
from adtrack.services.raw_event_columns import epoch_hour_indices, events_to_table

__all__ = ["UNSPECIFIED_REASON", "fold", "fold_table"]

UNSPECIFIED_REASON = "unspecified"  # an invalid event that carries no reason

_CLICK = int(ImpType.EXTERNAL_CLICK)
_CONVERSION = int(ImpType.CONVERSION)
_IMPRESSION = int(ImpType.EXTERNAL_IMPRESSION)


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
    sums = parts.group_by(list(RollupKey._fields), use_threads=False).aggregate(
        [(name, "sum") for name in _SUMS]
    )
    columns = sums.to_pydict()
    rows = delta.rows
    keys = zip(*(columns[name] for name in RollupKey._fields), strict=True)
    values = zip(*(columns[f"{name}_sum"] for name in _SUMS), strict=True)
    for key, sums_of_key in zip(keys, values, strict=True):
        counts = rows.get(key)  # type: ignore[call-overload]
        rows[RollupKey._make(key)] = (
            Counters._make(sums_of_key) if counts is None else counts.plus(sums_of_key)
        )
    if pc.any(invalid).as_py():
        _fold_invalid(parts.filter(invalid), table["invalid_reason"].filter(invalid), delta)
    return delta


def _count_of(
    counted: pa.ChunkedArray, attribution: pa.ChunkedArray, kind: str, none: pa.Array
) -> pa.ChunkedArray | pa.Array:
    """1 for each counted conversion attributed ``kind``; ``none`` when none is."""
    if not pc.any(counted).as_py():
        return none
    return pc.fill_null(pc.and_(counted, pc.equal(attribution, kind)), False).cast(pa.int64())


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


_SUMS = Counters._fields
