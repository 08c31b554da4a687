"""Log-level feeds: one row per tracked click (the click-tracker feed) or impression (our
extension), read from the raw-event archive; what a feed request is and what its rows hold.
(The conversions feed has columns of its own: ``conversion_feed.py``.)

A feed covers at most 24 hours and must start within the raw-event retention period. Rows are
read from the archive (a :class:`~adtrack.services.ports.RawEventReader` the caller
passes in) in batches, so a day of millions of clicks never sits in memory. The row iterators
here build one Python object per row; the CSV and JSON lines served are formatted a batch at a
time by Arrow's kernels (``feed_stream.py``).

Columns (the original click-tracker feed's, where they apply):
``datetime`` (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff`` like the original feed, with microseconds),
``tracker_id``, ``advertiser_id``, ``line_item_id``,
``publisher_id``, ``tag_id`` (placement, 0 if none), ``media_buy_cost`` (the ``ancost`` the
event carried; empty when the media cost came from a payment rule), ``revenue_value`` (the
event's booked revenue), ``pricing_type`` (the line item's revenue type when the event was
recorded), ``site_domain`` (host of the referrer), ``cachebuster``, ``user_agent``, ``invalid``,
then the audience: ``country`` (ISO 3166-1 alpha-2), ``device_type``, ``os``, ``browser`` (empty
in CSV, null in JSON, when unknown, as for events archived before they were recorded).
Money is a decimal string with six places.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from adtrack.domain.errors import ValidationError
from adtrack.domain.model import ImpType
from adtrack.reporting.request import parse_instant, parse_timezone
from adtrack.services.ports import RawEventReader

MAX_FEED_WINDOW = timedelta(hours=24)
FETCH_BATCH = 5_000  # rows read from the archive at a time
CHUNK_ROWS = 16_384  # rows per chunk of output bytes (and per archive read when streaming)

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
    "country",
    "device_type",
    "os",
    "browser",
)


class FeedKind(StrEnum):
    CLICK = "click"
    IMPRESSION = "impression"
    CONVERSION = "conversion"  # columns of its own: conversion_feed.py

    @property
    def imp_type(self) -> int:
        return int(_FEED_IMP_TYPES[self])


_FEED_IMP_TYPES = {
    FeedKind.CLICK: ImpType.EXTERNAL_CLICK,
    FeedKind.IMPRESSION: ImpType.EXTERNAL_IMPRESSION,
    FeedKind.CONVERSION: ImpType.CONVERSION,
}


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


@dataclass(frozen=True)
class FeedRules:
    """A deployment's feed rules: raw events are kept ``retention_days``, and times without an
    offset are read in ``timezone`` unless the request names another zone."""

    retention_days: int
    timezone: str

    def request(
        self, kind: FeedKind | str, start: object, end: object, timezone: str | None = None
    ) -> FeedRequest:
        """:func:`parse_feed_request` under these rules."""
        return parse_feed_request(
            kind,
            start,
            end,
            retention_days=self.retention_days,
            timezone=timezone or self.timezone,
        )


_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)")


def site_domain(referrer: str | None) -> str:
    """The host of a referrer URL, lower-cased (``""`` when there is none)."""
    if not referrer:
        return ""
    match = _HOST.match(referrer)
    return match.group(1).lower() if match else ""


def money_text(micros: int) -> str:
    # Event amounts are never negative; this is format_micros without its sign handling.
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


_K = TypeVar("_K")


class Memo(dict[_K, str]):
    """A bounded cache for one feed run: the same referrer pages and amounts come back again
    and again in a day of traffic, and a dict lookup is cheaper than formatting them anew."""

    def __init__(self, compute: Callable[[_K], str], limit: int = 65_536) -> None:
        super().__init__()
        self.compute = compute
        self.limit = limit

    def __missing__(self, key: _K) -> str:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.compute(key)
        return value


# The raw-event columns a feed row is made of, in the order the formatting below reads them.
SOURCE_COLUMNS: tuple[str, ...] = (
    "ts",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "ancost_used",
    "media_cost_micros",
    "booked_revenue_micros",
    "revenue_type",
    "referrer",
    "cachebuster",
    "user_agent",
    "invalid",
    "country",
    "device_type",
    "os",
    "browser",
)


def record_batches(
    reader: RawEventReader, request: FeedRequest, batch: int
) -> Iterator[pa.RecordBatch]:
    """The feed's events as the archive returns them, ``batch`` rows at a time, lazily."""
    return reader.read(
        request.start,
        request.end,
        imp_type=request.kind.imp_type,
        columns=SOURCE_COLUMNS,
        batch_rows=batch,
    )


def utc_texts(ts: pa.Array) -> pa.Array:
    """Timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC): the UTC wall time without a zone,
    which Arrow prints with the six decimals of a microsecond timestamp."""
    return pc.cast(pc.cast(ts, pa.timestamp("us")), pa.string())


# Any: one event as pyarrow's ``to_pylist()`` gives its columns' values (pyarrow is untyped).
ArrowRow = tuple[Any, ...]


def _raw_batches(
    reader: RawEventReader, request: FeedRequest, batch: int
) -> Iterator[list[ArrowRow]]:
    """The feed's events as tuples of :data:`SOURCE_COLUMNS` values (the timestamp already
    as text), ``batch`` at a time, lazily."""
    for records in record_batches(reader, request, batch):
        yield python_rows(records)


def python_rows(records: pa.RecordBatch) -> list[ArrowRow]:
    columns = [utc_texts(records.column(0)).to_pylist()]
    columns.extend(records.column(i).to_pylist() for i in range(1, records.num_columns))
    return list(zip(*columns, strict=True))


def _feed_objects(
    reader: RawEventReader, request: FeedRequest, batch: int
) -> Iterator[list[dict[str, object]]]:
    """The feed rows as objects keyed by :data:`FEED_COLUMNS` (null for nothing, ``invalid`` a
    boolean), ``batch`` at a time: what the JSON lines hold and :func:`iter_feed_batches` lists.
    Built in one pass straight from the archive's rows."""
    domain = Memo(site_domain)
    for rows in _raw_batches(reader, request, batch):
        yield row_objects(rows, domain)


def row_objects(rows: list[ArrowRow], domain: Memo[str | None]) -> list[dict[str, object]]:
    """The feed objects of rows of :data:`SOURCE_COLUMNS` (see :func:`_feed_objects`)."""
    money = Memo(money_text)
    return [
        {
            "datetime": ts,
            "tracker_id": tracker_id,
            "advertiser_id": advertiser_id,
            "line_item_id": line_item_id,
            "publisher_id": publisher_id,
            "tag_id": placement_id or 0,
            "media_buy_cost": money[media_cost] if ancost_used else None,
            "revenue_value": money[revenue],
            "pricing_type": revenue_type,
            "site_domain": domain[referrer],
            "cachebuster": cachebuster,
            "user_agent": user_agent,
            "invalid": bool(invalid),
            "country": country,
            "device_type": device_type,
            "os": os,
            "browser": browser,
        }
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
            country,
            device_type,
            os,
            browser,
        ) in rows
    ]


def iter_feed_batches(
    reader: RawEventReader, request: FeedRequest, batch: int = FETCH_BATCH
) -> Iterator[list[tuple[object, ...]]]:
    """Feed rows in batches of up to ``batch`` tuples (:data:`FEED_COLUMNS` order), oldest
    first. Lazily: one batch is read from the archive per step; the read stays open until the
    iterator is exhausted or closed."""
    for objects in _feed_objects(reader, request, batch):
        yield [tuple(row.values()) for row in objects]


def iter_feed_rows(
    reader: RawEventReader, request: FeedRequest, batch: int = FETCH_BATCH
) -> Iterator[tuple[object, ...]]:
    """Feed rows one by one (see :func:`iter_feed_batches`)."""
    for rows in iter_feed_batches(reader, request, batch):
        yield from rows
