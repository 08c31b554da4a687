"""Log-level feeds: one row per tracked click (the click-tracker feed) or impression (our
extension), read from the raw ``events`` table and streamed as CSV or JSON lines.

A feed covers at most 24 hours and must start within the raw-event retention period. Rows are
read through a streaming cursor (a server-side cursor on PostgreSQL) in batches and written out
chunk by chunk, so a day of millions of clicks never sits in memory.

Columns (the original click-tracker feed's, where they apply):
``datetime`` (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff`` like the original feed, with microseconds),
``tracker_id``, ``advertiser_id``, ``line_item_id``,
``publisher_id``, ``tag_id`` (placement, 0 if none), ``media_buy_cost`` (the ``ancost`` the
event carried; empty when the media cost came from a payment rule), ``revenue_value`` (the
event's booked revenue), ``pricing_type`` (the line item's revenue type when the event was
recorded), ``site_domain`` (host of the referrer), ``cachebuster``, ``user_agent``, ``invalid``.
Money is a decimal string with six places.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, String, func, select, type_coerce

from adtrack.adapters.sql import tables as t
from adtrack.config import Settings
from adtrack.domain.errors import ValidationError
from adtrack.domain.model import ImpType
from adtrack.services.report_query import parse_instant, parse_timezone

MAX_FEED_WINDOW = timedelta(hours=24)
FETCH_BATCH = 5_000  # rows fetched from the database at a time
CHUNK_ROWS = 2_000  # rows per chunk of output bytes (and per database fetch when streaming)

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


def parse_deployment_feed_request(
    settings: Settings,
    kind: FeedKind | str,
    start: object,
    end: object,
    timezone: str | None = None,
) -> FeedRequest:
    """:func:`parse_feed_request` within the deployment's raw-event retention, reading times
    without an offset in ``timezone`` (default: the deployment's time zone)."""
    return parse_feed_request(
        kind,
        start,
        end,
        retention_days=settings.raw_event_retention_days,
        timezone=timezone or settings.timezone,
    )


_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)")


def site_domain(referrer: str | None) -> str:
    """The host of a referrer URL, lower-cased (``""`` when there is none)."""
    if not referrer:
        return ""
    match = _HOST.match(referrer)
    return match.group(1).lower() if match else ""


def _money(micros: int) -> str:
    # Event amounts are never negative; this is format_micros without its sign handling.
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class _Memo(dict[Any, str]):
    """A bounded cache for one feed run: the same referrer pages and amounts come back again
    and again in a day of traffic, and a dict lookup is cheaper than formatting them anew."""

    def __init__(self, compute: Callable[[Any], str], limit: int = 65_536) -> None:
        super().__init__()
        self.compute = compute
        self.limit = limit

    def __missing__(self, key: Any) -> str:
        if len(self) >= self.limit:
            self.clear()
        value = self[key] = self.compute(key)
        return value


def _feed_select(engine: Engine, request: FeedRequest) -> Any:
    """The feed query. The timestamp comes back as text, formatted by the database where it
    can (PostgreSQL) or in its stored UTC text form (SQLite), to spare a datetime per row."""
    e = t.events
    if engine.dialect.name == "postgresql":
        ts: Any = func.to_char(func.timezone("UTC", e.c.ts), "YYYY-MM-DD HH24:MI:SS.US")
    else:
        ts = type_coerce(e.c.ts, String)
    return (
        select(
            ts,
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


def _utc_text(stored: str) -> str:
    """Any other stored form of a timestamp as ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC).

    The select returns that form already (26 characters) -- SQLite stores it, PostgreSQL
    formats it -- so this runs only for values written some other way."""
    parsed = datetime.fromisoformat(stored)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat(sep=" ", timespec="microseconds")


@contextmanager
def _open_cursor(conn: Connection, stmt: Any) -> Iterator[Any]:
    """A driver cursor over ``stmt``, read with ``fetchmany``.

    Rows come straight from the driver: the select returns plain values, and skipping the
    result layer's per-row objects is a good part of the feed's speed. On PostgreSQL the cursor
    is a server-side (named) cursor, so each ``fetchmany`` is one ``FETCH`` and the server keeps
    the rest; SQLite's cursor steps through the result lazily by nature.
    """
    if conn.dialect.name == "postgresql":
        compiled = stmt.compile(dialect=conn.dialect)
        conn.exec_driver_sql("SELECT 1")  # begin the transaction the named cursor lives in
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor(name=f"adtrack_feed_{uuid.uuid4().hex[:12]}")
        try:
            cursor.execute(str(compiled), compiled.params)
            yield cursor
        finally:
            cursor.close()
        return
    result = conn.execute(stmt)
    try:
        yield result.cursor
    finally:
        result.close()


def _raw_batches(engine: Engine, request: FeedRequest, batch: int) -> Iterator[list[Any]]:
    """The query's rows as the driver returns them, ``batch`` at a time, lazily."""
    with engine.connect() as conn, _open_cursor(conn, _feed_select(engine, request)) as cursor:
        while rows := cursor.fetchmany(batch):
            yield rows


def _feed_objects(
    engine: Engine, request: FeedRequest, batch: int
) -> Iterator[list[dict[str, Any]]]:
    """The feed rows as objects keyed by :data:`FEED_COLUMNS` (null for nothing, ``invalid`` a
    boolean), ``batch`` at a time: what the JSON lines hold and :func:`iter_feed_batches` lists.
    Built in one pass straight from the database rows."""
    utc_text = _utc_text
    money = _Memo(_money)
    domain = _Memo(site_domain)
    for rows in _raw_batches(engine, request, batch):
        yield [
            {
                "datetime": ts if len(ts) == 26 else utc_text(ts),
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
            ) in rows
        ]


def iter_feed_batches(
    engine: Engine, request: FeedRequest, batch: int = FETCH_BATCH
) -> Iterator[list[tuple[Any, ...]]]:
    """Feed rows in batches of up to ``batch`` tuples (:data:`FEED_COLUMNS` order), oldest
    first. Lazily: one batch is fetched from the database per step; the connection stays open
    until the iterator is exhausted or closed."""
    for objects in _feed_objects(engine, request, batch):
        yield [tuple(row.values()) for row in objects]


def iter_feed_rows(
    engine: Engine, request: FeedRequest, batch: int = FETCH_BATCH
) -> Iterator[tuple[Any, ...]]:
    """Feed rows one by one (see :func:`iter_feed_batches`)."""
    for rows in iter_feed_batches(engine, request, batch):
        yield from rows


def stream_feed(
    engine: Engine,
    request: FeedRequest,
    fmt: FeedFormat | str = FeedFormat.CSV,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[bytes]:
    """The feed as chunks of bytes, one chunk per ``chunk_rows`` rows: CSV (header first;
    empty cells for nothing, ``invalid`` as 0/1) or JSON lines (one object per row; null for
    nothing, ``invalid`` as a boolean)."""
    if FeedFormat(fmt) is FeedFormat.JSONL:
        yield from _jsonl_chunks(engine, request, chunk_rows)
    else:
        yield from _csv_chunks(engine, request, chunk_rows)


def _csv_text(value: str | None) -> str:
    """A CSV cell for free text (RFC 4180): quoted only when it must be."""
    if value is None:
        return ""
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_chunks(engine: Engine, request: FeedRequest, chunk_rows: int) -> Iterator[bytes]:
    """CSV lines formatted straight from the database rows in one pass (the hot loop of the
    feed): numbers and our own formatted values never need quoting; free text goes through
    :func:`_csv_text`."""
    cell = _csv_text
    money = _Memo(_money)
    domain = _Memo(lambda referrer: cell(site_domain(referrer)))
    pricing_cell = _Memo(cell)
    agent_cell = _Memo(cell)  # a day's traffic comes from a few thousand user agents
    utc_text = _utc_text
    yield (",".join(FEED_COLUMNS) + "\r\n").encode()
    for rows in _raw_batches(engine, request, chunk_rows):
        yield "".join(
            [
                f"{ts if len(ts) == 26 else utc_text(ts)},"
                f"{tracker},{advertiser},{line_item},{publisher},{tag or 0},"
                f"{money[cost] if ancost_used else ''},{money[revenue]},{pricing_cell[pricing]},"
                f"{domain[referrer]},{cell(cachebuster)},{agent_cell[user_agent]},"
                f"{1 if invalid else 0}\r\n"
                for (
                    ts,
                    tracker,
                    advertiser,
                    line_item,
                    publisher,
                    tag,
                    ancost_used,
                    cost,
                    revenue,
                    pricing,
                    referrer,
                    cachebuster,
                    user_agent,
                    invalid,
                ) in rows
            ]
        ).encode()


def _jsonl_chunks(engine: Engine, request: FeedRequest, chunk_rows: int) -> Iterator[bytes]:
    """JSON lines: one object per feed row."""
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    for objects in _feed_objects(engine, request, chunk_rows):
        yield b"".join([dumps(row, option=option) for row in objects])
