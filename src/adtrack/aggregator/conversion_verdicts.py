"""Which attributed conversions count: the decisions that need every collector's conversions.

A collector attributes a conversion from the conversion alone (``collector/conversions.py``).
Whether it is the second of an order, or comes too soon after the click's last counted one, is
decided here, where all conversions meet, from what the store kept of those counted before
(``ConversionHistory``), and kept with the batch in its transaction:

* ``duplicate_order``: the pixel counted this ``order_id`` already (with another conversion);
* ``too_soon``: the pixel's ``min_minutes_per_conversion`` is null (one conversion per click)
  and the click counted one already, or it is ``n`` and the click counted one less than ``n``
  minutes before or after this one (``0`` counts every one).

A conversion decided before (its batch read again after a crash, or by a second aggregator) gets
the verdict it got then, so the archive's copy of a batch and the rollups agree however often
it is read. A conversion that does not count is kept in the archive unattributed, with its
reason, and counts nowhere. Within a batch, conversions are decided in log order.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.events import CONVERSION_DUPLICATE_ORDER, CONVERSION_TOO_SOON
from adtrack.domain.model import ImpType
from adtrack.services.ports import ConversionCandidate, ConversionHistory, ConversionVerdicts

__all__ = ["apply_verdicts", "conversion_candidates", "judge"]

_CONVERSION = int(ImpType.CONVERSION)
_MINUTE_MICROS = 60_000_000
_CANDIDATE_COLUMNS = ("event_id", "ts", "conversion_pixel_id", "order_id", "source_event_id")


def conversion_candidates(table: pa.Table) -> list[ConversionCandidate]:
    """The batch's attributed, valid conversions, in log order (none: no Python work)."""
    if table.num_rows == 0:
        return []
    wanted = pc.and_(
        pc.and_(pc.equal(table["imp_type"], _CONVERSION), pc.is_valid(table["attribution"])),
        pc.invert(table["invalid"]),
    )
    if not pc.any(wanted).as_py():
        return []
    rows = table.filter(wanted).select(list(_CANDIDATE_COLUMNS))
    columns = [rows[name].to_pylist() for name in _CANDIDATE_COLUMNS]
    columns[1] = rows["ts"].cast(pa.int64()).to_pylist()
    return [ConversionCandidate._make(values) for values in zip(*columns, strict=True)]


def judge(candidates: list[ConversionCandidate], history: ConversionHistory) -> ConversionVerdicts:
    """Every candidate's verdict (None: counted), and which of them are decided now."""
    verdicts = ConversionVerdicts()
    orders = dict(history.orders)
    counted = {key: list(times) for key, times in history.counted.items()}
    for candidate in candidates:
        event_id = candidate.event_id
        if event_id in history.verdicts:
            verdicts.reasons[event_id] = history.verdicts[event_id]
            continue
        pixel = candidate.conversion_pixel_id
        reason: str | None = None
        order_key = None if candidate.order_id is None else (pixel, candidate.order_id)
        if order_key is not None and orders.get(order_key, event_id) != event_id:
            reason = CONVERSION_DUPLICATE_ORDER
        click_key = (
            None if candidate.source_event_id is None else (pixel, candidate.source_event_id)
        )
        if reason is None and click_key is not None:
            minutes = history.min_minutes.get(pixel)
            earlier = [ts for ts, other in counted.get(click_key, ()) if other != event_id]
            if minutes is None:
                if earlier:
                    reason = CONVERSION_TOO_SOON
            elif minutes > 0:
                gap = minutes * _MINUTE_MICROS
                if any(abs(candidate.ts - ts) < gap for ts in earlier):
                    reason = CONVERSION_TOO_SOON
        verdicts.reasons[event_id] = reason
        verdicts.new.append(candidate)
        if reason is None:
            if order_key is not None:
                orders[order_key] = event_id
            if click_key is not None:
                counted.setdefault(click_key, []).append((candidate.ts, event_id))
    return verdicts


def apply_verdicts(table: pa.Table, reasons: dict[str, str | None]) -> pa.Table:
    """``table`` with the conversions that do not count unattributed, with their reason."""
    refused = {event_id: reason for event_id, reason in reasons.items() if reason is not None}
    if not refused:
        return table
    ids = pa.array(list(refused), pa.string())
    position = pc.index_in(table["event_id"], value_set=ids)
    hit = pc.is_valid(position)
    new_reasons = pc.take(pa.array(list(refused.values()), pa.string()), position)
    attribution = pc.if_else(hit, pa.scalar(None, pa.string()), table["attribution"])
    reason = pc.if_else(hit, new_reasons, table["attribution_reason"])
    table = table.set_column(
        table.schema.get_field_index("attribution"), "attribution", attribution
    )
    return table.set_column(
        table.schema.get_field_index("attribution_reason"), "attribution_reason", reason
    )
