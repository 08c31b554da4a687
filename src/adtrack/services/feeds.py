"""Log-level feeds: one row per tracked click (the click-tracker feed) or impression (our
extension), read from the raw ``events`` table and streamed as CSV or JSON lines.

A feed covers at most 24 hours and must start within the raw-event retention period. Rows are
read through a streaming cursor (a server-side cursor on PostgreSQL) in batches and written out
chunk by chunk, so a day of millions of clicks never sits in memory.

Columns (the original click-tracker feed's, where they apply):
``datetime`` (UTC, ISO 8601), ``tracker_id``, ``advertiser_id``, ``line_item_id``,
``publisher_id``, ``tag_id`` (placement, 0 if none), ``media_buy_cost`` (the ``ancost`` the
event carried; empty when the media cost came from a payment rule), ``revenue_value`` (the
event's booked revenue), ``pricing_type`` (the line item's revenue type when the event was
recorded), ``site_domain`` (host of the referrer), ``cachebuster``, ``user_agent``, ``invalid``.
Money is a decimal string with six places.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Engine, select

from adtrack.adapters.sql import tables as t
from adtrack.domain.errors import ValidationError
from adtrack.domain.model import ImpType
from adtrack.domain.money import format_micros
from adtrack.services.report_query import parse_instant, parse_timezone

MAX_FEED_WINDOW = timedelta(hours=24)
FETCH_BATCH = 5_000  # rows fetched from the database at a time
CHUNK_ROWS = 2_000  # rows per chunk of output bytes

FEED_COLUMNS: tuple[str, ...] = (
    "datetime",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "tag_id",
    "media_buy_cost",
    "revenue_value",
    "pricing_type",
    "site_domain",
    "cachebuster",
    "user_agent",
    "invalid",
)


class FeedKind(StrEnum):
    CLICK = "click"
    IMPRESSION = "impression"

    @property
    def imp_type(self) -> int:
        return int(
            ImpType.EXTERNAL_CLICK if self is FeedKind.CLICK else ImpType.EXTERNAL_IMPRESSION
        )


class FeedFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"

    @property
    def media_type(self) -> str:
        return "text/csv; charset=utf-8" if self is FeedFormat.CSV else "application/x-ndjson"


@dataclass(frozen=True)
class FeedRequest:
    kind: FeedKind
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive


def parse_feed_request(
    kind: FeedKind | str,
    start: object,
    end: object,
    *,
    retention_days: int,
    timezone: str = "UTC",
    now: datetime | None = None,
) -> FeedRequest:
    """Validate a feed window: ``end`` after ``start``, at most 24 hours, ``start`` within the
    retention period. Dates and datetimes without an offset are read in ``timezone``."""
    tz = parse_timezone(timezone)
    start_at = parse_instant(start, tz, "start").astimezone(UTC)
    end_at = parse_instant(end, tz, "end").astimezone(UTC)
    if end_at <= start_at:
        raise ValidationError("end", "must be after start")
    if end_at - start_at > MAX_FEED_WINDOW:
        raise ValidationError("end", "a feed covers at most 24 hours after start")
    oldest = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    if start_at < oldest:
        raise ValidationError(
            "start",
            f"must be within the last {retention_days} days (raw events are kept that long)",
        )
    return FeedRequest(kind=FeedKind(kind), start=start_at, end=end_at)


_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)")


def site_domain(referrer: str | None) -> str:
    """The host of a referrer URL, lower-cased (``""`` when there is none)."""
    if not referrer:
        return ""
    match = _HOST.match(referrer)
    return match.group(1).lower() if match else ""


def _utc_text(value: datetime) -> str:
    if value.tzinfo is not None:  # PostgreSQL: aware, in the session's time zone
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def iter_feed_rows(
    engine: Engine, request: FeedRequest, batch: int = FETCH_BATCH
) -> Iterator[tuple[Any, ...]]:
    """Feed rows as tuples in :data:`FEED_COLUMNS` order, oldest first, streamed lazily.

    The connection stays open while the iterator is consumed and is closed when it is
    exhausted or closed.
    """
    e = t.events
    stmt = (
        select(
            e.c.ts,
            e.c.tracker_id,
            e.c.advertiser_id,
            e.c.line_item_id,
            e.c.publisher_id,
            e.c.placement_id,
            e.c.ancost_used,
            e.c.media_cost_micros,
            e.c.booked_revenue_micros,
            e.c.revenue_type,
            e.c.referrer,
            e.c.cachebuster,
            e.c.user_agent,
            e.c.invalid,
        )
        .where(
            e.c.imp_type == request.kind.imp_type,
            e.c.ts >= request.start,
            e.c.ts < request.end,
        )
        .order_by(e.c.ts)
    )
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
        for rows in result.partitions():
            for (
                ts,
                tracker_id,
                advertiser_id,
                line_item_id,
                publisher_id,
                placement_id,
                ancost_used,
                media_cost,
                revenue,
                revenue_type,
                referrer,
                cachebuster,
                user_agent,
                invalid,
            ) in rows:
                yield (
                    _utc_text(ts),
                    tracker_id,
                    advertiser_id,
                    line_item_id,
                    publisher_id,
                    placement_id or 0,
                    format_micros(media_cost) if ancost_used else None,
                    format_micros(revenue),
                    revenue_type,
                    site_domain(referrer),
                    cachebuster,
                    user_agent,
                    bool(invalid),
                )


def stream_feed(
    engine: Engine,
    request: FeedRequest,
    fmt: FeedFormat | str = FeedFormat.CSV,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[bytes]:
    """The feed as chunks of bytes: CSV (header first; empty cells for nothing, ``invalid`` as
    0/1) or JSON lines (one object per row; null for nothing, ``invalid`` as a boolean)."""
    rows = iter_feed_rows(engine, request)
    if FeedFormat(fmt) is FeedFormat.JSONL:
        yield from _jsonl_chunks(rows, chunk_rows)
    else:
        yield from _csv_chunks(rows, chunk_rows)


def _csv_chunks(rows: Iterator[tuple[Any, ...]], chunk_rows: int) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(FEED_COLUMNS)
    pending = 0
    for row in rows:
        # csv writes None as an empty cell; invalid as 0/1 like the original feeds' flags.
        writer.writerow((*row[:-1], 1 if row[-1] else 0))
        pending += 1
        if pending >= chunk_rows:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
            pending = 0
    tail = buf.getvalue()
    if tail:
        yield tail.encode()


def _jsonl_chunks(rows: Iterator[tuple[Any, ...]], chunk_rows: int) -> Iterator[bytes]:
    parts: list[bytes] = []
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    for row in rows:
        parts.append(dumps(dict(zip(FEED_COLUMNS, row, strict=True)), option=option))
        if len(parts) >= chunk_rows:
            yield b"".join(parts)
            parts = []
    if parts:
        yield b"".join(parts)
