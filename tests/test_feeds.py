"""The click- and impression-tracker feeds, and raw-event retention, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t
from adtrack.config import Settings
from adtrack.domain.errors import ValidationError
from adtrack.services import feeds
from adtrack.services.feeds import (
    FEED_COLUMNS,
    FeedKind,
    iter_feed_rows,
    parse_feed_request,
    site_domain,
    stream_feed,
)
from adtrack.services.retention import purge_periodically, purge_raw_events
from tests.reporting_support import (
    BACKENDS,
    TRACKERS,
    RawEvent,
    load_events,
    load_rollups,
    migrated_engine,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY_START = datetime(2026, 3, 9, tzinfo=UTC)
CLICK = TRACKERS[1]  # click tracker 2: placement 1, rule 1, revenue type cpc
CLICK_NO_PLACEMENT = TRACKERS[3]  # click tracker 4, placement 2
IMPRESSION = TRACKERS[2]  # impression tracker 3: no placement


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    with migrated_engine(request.param, tmp_path) as eng:
        yield eng


def test_click_feed_rows_carry_the_original_columns(engine: Engine) -> None:
    events = [
        RawEvent(
            DAY_START + timedelta(hours=1, microseconds=250),
            CLICK,
            1_250_000,
            500_000,
            False,
            ancost_used=True,
            cachebuster="cb1",
            user_agent="Mozilla/5.0",
            referrer="https://News.Example.com:8443/a/b?c=d#e",
        ),
        RawEvent(DAY_START + timedelta(hours=2), CLICK, 7, 0, True, referrer=None),
        RawEvent(DAY_START + timedelta(hours=3), IMPRESSION, 1000, 2000, False),
        RawEvent(DAY_START - timedelta(seconds=1), CLICK, 1, 1, False),  # before the window
        RawEvent(DAY_START + timedelta(days=1), CLICK, 1, 1, False),  # end is exclusive
    ]
    load_events(engine, events)
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    rows = list(iter_feed_rows(engine, request))
    assert rows == [
        (
            "2026-03-09 01:00:00.000250",
            2,
            1,
            1,
            1,
            1,
            "1.250000",
            "0.500000",
            "cpc",
            "news.example.com",
            "cb1",
            "Mozilla/5.0",
            False,
        ),
        (
            "2026-03-09 02:00:00.000000",
            2,
            1,
            1,
            1,
            1,
            None,
            "0.000000",
            "cpc",
            "",
            None,
            None,
            True,
        ),
    ]
    csv_text = b"".join(stream_feed(engine, request, "csv")).decode()
    parsed = list(csv.reader(io.StringIO(csv_text)))
    assert parsed[0] == list(FEED_COLUMNS)
    assert parsed[1][6] == "1.250000" and parsed[1][-1] == "0"
    assert parsed[2][6] == "" and parsed[2][-1] == "1"
    lines = b"".join(stream_feed(engine, request, "jsonl")).splitlines()
    assert [orjson.loads(line) for line in lines][1] == {
        "datetime": "2026-03-09 02:00:00.000000",
        "tracker_id": 2,
        "advertiser_id": 1,
        "line_item_id": 1,
        "publisher_id": 1,
        "tag_id": 1,
        "media_buy_cost": None,
        "revenue_value": "0.000000",
        "pricing_type": "cpc",
        "site_domain": "",
        "cachebuster": None,
        "user_agent": None,
        "invalid": True,
    }
    imps = parse_feed_request("impression", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    (imp_row,) = list(iter_feed_rows(engine, imps))
    assert imp_row[1] == 3 and imp_row[5] == 0  # tag_id 0 when the tracker has no placement


def test_feed_streams_lazily_in_chunks(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 12_345
    events = [
        RawEvent(DAY_START + timedelta(seconds=i), CLICK_NO_PLACEMENT, i, 0, False)
        for i in range(n)
    ]
    load_events(engine, events)
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)

    # The rows come through a generator: nothing is read before the first row is asked for,
    # and the database is asked for rows a batch at a time.
    rows = iter_feed_rows(engine, request, batch=1000)
    assert isinstance(rows, Iterator)
    first = next(rows)
    assert first[0] == "2026-03-09 00:00:00.000000"
    rows.close()

    # Output arrives in bounded chunks; each chunk holds at most chunk_rows rows.
    chunk_sizes = []
    total_lines = 0
    for chunk in stream_feed(engine, request, "csv", chunk_rows=500):
        lines = chunk.count(b"\r\n")
        chunk_sizes.append(lines)
        total_lines += lines
    assert total_lines == n + 1  # header included
    assert max(chunk_sizes) <= 501 and len(chunk_sizes) >= n // 500

    # The database is asked for rows a batch at a time: producing the first chunk of output
    # fetched only that chunk's rows, not the day.
    fetched: list[int] = []
    original = feeds._open_cursor

    class CountingCursor:
        def __init__(self, cursor: Any) -> None:
            self.cursor = cursor

        def fetchmany(self, size: int) -> list[Any]:
            rows = self.cursor.fetchmany(size)
            fetched.append(len(rows))
            return rows

    @contextmanager
    def counting(conn: Any, stmt: Any) -> Iterator[CountingCursor]:
        with original(conn, stmt) as cursor:
            yield CountingCursor(cursor)

    monkeypatch.setattr(feeds, "_open_cursor", counting)
    stream = stream_feed(engine, request, "jsonl", chunk_rows=100)
    first_chunk = next(stream)
    assert first_chunk.count(b"\n") == 100
    assert fetched == [100]
    stream.close()


def test_feed_on_postgresql_uses_a_server_side_cursor(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("server-side cursors are a PostgreSQL feature")
    load_events(
        engine, [RawEvent(DAY_START + timedelta(seconds=i), CLICK, 1, 1, False) for i in range(50)]
    )
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    rows = iter_feed_rows(engine, request, batch=10)
    next(rows)
    with engine.connect() as other:
        # The feed's session is reading through a named cursor, FETCHing a batch at a time.
        queries = (
            other.exec_driver_sql(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            .scalars()
            .all()
        )
    rows.close()
    assert any(q.lstrip().upper().startswith("FETCH FORWARD") for q in queries), queries


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-03-09", "2026-03-10T00:00:01", "end"),  # longer than 24 hours
        ("2026-03-09T05:00", "2026-03-09T05:00", "end"),
        ("2026-02-01", "2026-02-02", "start"),  # older than the 30-day retention
        ("soon", "2026-03-10", "start"),
        ("2026-03-09", None, "end"),
    ],
)
def test_feed_window_is_checked(start: str, end: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_feed_request(FeedKind.CLICK, start, end, retention_days=30, now=NOW)
    assert info.value.field == field


def test_feed_window_of_exactly_24_hours_in_a_local_zone() -> None:
    request = parse_feed_request(
        "click",
        "2026-03-09T06:00",
        "2026-03-10T06:00",
        retention_days=30,
        timezone="America/New_York",
        now=NOW,
    )
    assert request.start == datetime(2026, 3, 9, 10, tzinfo=UTC)
    assert request.end - request.start == timedelta(hours=24)


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.example.com/path", "www.example.com"),
        ("http://user:pw@Shop.Example.org:8080?q=1", "shop.example.org"),
        ("https://[2001:db8::1]:443/x", "[2001:db8::1]"),
        ("android-app://com.example.app/", "com.example.app"),
        ("not a url", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_site_domain_is_the_referrer_host(referrer: str | None, host: str) -> None:
    assert site_domain(referrer) == host


def test_retention_purges_old_raw_events_and_keeps_rollups(engine: Engine) -> None:
    old = [
        RawEvent(NOW - timedelta(days=31, minutes=i), tr, 5, 5, False)
        for i, tr in enumerate(TRACKERS)
    ]
    fresh = [RawEvent(NOW - timedelta(days=29), tr, 5, 5, False) for tr in TRACKERS]
    load_events(engine, old + fresh)
    load_rollups(engine, old + fresh)
    with engine.connect() as conn:
        rollup_rows_before = conn.execute(
            select(func.count()).select_from(t.rollup_hourly)
        ).scalar()
    assert purge_raw_events(engine, retention_days=30, now=NOW, batch_size=2) == len(old)
    with engine.connect() as conn:
        remaining = conn.execute(select(func.count()).select_from(t.events)).scalar()
        rollup_rows_after = conn.execute(select(func.count()).select_from(t.rollup_hourly)).scalar()
        oldest = conn.execute(select(func.min(t.events.c.ts))).scalar()
    assert remaining == len(fresh)
    assert rollup_rows_after == rollup_rows_before
    assert oldest is not None
    assert purge_raw_events(engine, retention_days=30, now=NOW) == 0


def test_the_periodic_purge_runs_until_cancelled(engine: Engine, tmp_path: Any) -> None:
    old = [RawEvent(datetime.now(UTC) - timedelta(days=40), tr, 5, 5, False) for tr in TRACKERS]
    load_events(engine, old)
    settings = Settings.from_env(
        {"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_RAW_EVENT_RETENTION_DAYS": "30"}
    )

    async def run() -> int:
        task = asyncio.create_task(purge_periodically(engine, settings, interval_seconds=0.05))
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                with engine.connect() as conn:
                    left = conn.execute(select(func.count()).select_from(t.events)).scalar()
                if left == 0:
                    break
        finally:
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return int(left or 0)

    assert asyncio.run(run()) == 0
