"""The conversions feed: one row per conversion (counted or not), with the click it is
attributed to and the delay since it, read from the raw-event archive like the click-tracker
feed (``feeds.py``: the same window rules, at most 24 hours within the retention period).

Columns: ``datetime`` (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), ``event_id``,
``conversion_pixel_id``, ``order_id``, ``attribution`` (``post_click``, ``post_view``, or
empty when not counted), ``attribution_reason`` (why not: ``no_token``, ``malformed``,
``forged``, ``expired``, ``out_of_window``, ``wrong_advertiser``, ``trigger_type``,
``duplicate_order``, ``too_soon``), ``revenue_value`` (what it books, six decimals),
``value_given`` (the postback's ``value`` set it), ``advertiser_id`` (the pixel's),
``tracker_id``, ``line_item_id``, ``publisher_id``, ``tag_id`` (placement), ``payment_rule_id``
(the attributed click's; 0 when not attributed), ``click_event_id`` and ``click_datetime`` (the
click its token named, also when it was not counted), ``delay_seconds`` (from that click to the
conversion, six decimals), ``invalid``. Conversions are few next to clicks: rows are formatted
one by one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from adtrack.domain.model import ImpType
from adtrack.reporting.feeds import CHUNK_ROWS, FeedFormat, FeedRequest, money_text
from adtrack.services.ports import RawEventReader

__all__ = ["CONVERSION_FEED_COLUMNS", "conversion_rows", "stream_conversion_feed"]

CONVERSION_FEED_COLUMNS: tuple[str, ...] = (
    "datetime",
    "event_id",
    "conversion_pixel_id",
    "order_id",
    "attribution",
    "attribution_reason",
    "revenue_value",
    "value_given",
    "advertiser_id",
    "tracker_id",
    "line_item_id",
    "publisher_id",
    "tag_id",
    "payment_rule_id",
    "click_event_id",
    "click_datetime",
    "delay_seconds",
    "invalid",
)
_SOURCE_COLUMNS = (
    "ts",
    "event_id",
    "conversion_pixel_id",
    "order_id",
    "attribution",
    "attribution_reason",
    "booked_revenue_micros",
    "ancost_used",
    "advertiser_id",
    "tracker_id",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "payment_rule_id",
    "source_event_id",
    "source_ts",
    "invalid",
)
_CONVERSION = int(ImpType.CONVERSION)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time_text(value: datetime | None) -> str | None:
    return None if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"


def _micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _seconds_text(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    return f"{sign}{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _row(values: dict[str, object]) -> dict[str, object]:
    ts = values["ts"]
    source_ts = values["source_ts"]
    assert isinstance(ts, datetime)
    delay = None
    if isinstance(source_ts, datetime):
        delay = _seconds_text(_micros(ts) - _micros(source_ts))
    revenue = values["booked_revenue_micros"]
    assert isinstance(revenue, int)
    return {
        "datetime": _time_text(ts),
        "event_id": values["event_id"],
        "conversion_pixel_id": values["conversion_pixel_id"],
        "order_id": values["order_id"],
        "attribution": values["attribution"],
        "attribution_reason": values["attribution_reason"],
        "revenue_value": money_text(revenue),
        "value_given": bool(values["ancost_used"]),
        "advertiser_id": values["advertiser_id"],
        "tracker_id": values["tracker_id"],
        "line_item_id": values["line_item_id"],
        "publisher_id": values["publisher_id"],
        "tag_id": values["placement_id"] or 0,
        "payment_rule_id": values["payment_rule_id"] or 0,
        "click_event_id": values["source_event_id"],
        "click_datetime": _time_text(source_ts if isinstance(source_ts, datetime) else None),
        "delay_seconds": delay,
        "invalid": bool(values["invalid"]),
    }


def conversion_rows(
    reader: RawEventReader, request: FeedRequest, batch: int = CHUNK_ROWS
) -> Iterator[list[dict[str, object]]]:
    """The feed's rows as objects keyed by :data:`CONVERSION_FEED_COLUMNS`, oldest first, a
    batch at a time, lazily."""
    for records in reader.read(
        request.start,
        request.end,
        imp_type=_CONVERSION,
        columns=_SOURCE_COLUMNS,
        batch_rows=batch,
    ):
        table = pa.Table.from_batches([records])
        yield [_row(values) for values in table.to_pylist()]


def stream_conversion_feed(
    reader: RawEventReader, request: FeedRequest, fmt: FeedFormat | str = FeedFormat.CSV
) -> Iterator[bytes]:
    """The feed as chunks of bytes: CSV (header first; empty cells for nothing, booleans as
    0/1) or JSON lines (null for nothing, booleans as booleans)."""
    if FeedFormat(fmt) is FeedFormat.JSONL:
        for rows in conversion_rows(reader, request):
            yield b"".join(orjson.dumps(row) + b"\n" for row in rows)
        return
    yield (",".join(CONVERSION_FEED_COLUMNS) + "\r\n").encode()
    for rows in conversion_rows(reader, request):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for row in rows:
            writer.writerow(
                "" if v is None else int(v) if isinstance(v, bool) else v for v in row.values()
            )
        yield out.getvalue().encode()
