"""The click- and impression-tracker feeds, and raw-event retention, over the raw-event archive
with its manifest on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader
from adtrack.adapters.raw_events.parquet_archive import ArchiveRetention, ParquetRawEventArchive
from adtrack.adapters.sql import tables as t
from adtrack.bootstrap import build_raw_event_retention
from adtrack.config import Settings
from adtrack.domain.errors import ValidationError
from adtrack.reporting.feed_stream import stream_feed
from adtrack.reporting.feeds import (
    FEED_COLUMNS,
    FeedKind,
    iter_feed_rows,
    parse_feed_request,
    site_domain,
)
from adtrack.services.raw_event_columns import events_to_table
from adtrack.services.retention import purge_periodically, purge_raw_events
from tests.support.raw_events import archived_count, archived_events
from tests.support.reporting import (
    BACKENDS,
    TRACKERS,
    RawEvent,
    load_events,
    load_rollups,
    migrated_engine,
    to_event,
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


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "raw-events"


@pytest.fixture
def reader(engine: Engine, root: Path) -> DuckDBRawEventReader:
    return DuckDBRawEventReader(root, engine)


def test_click_feed_rows_carry_the_original_columns(
    engine: Engine, root: Path, reader: DuckDBRawEventReader
) -> None:
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
            country="NL",
            device_type="mobile",
            os="Android",
            browser="Chrome Mobile",
        ),
        RawEvent(DAY_START + timedelta(hours=2), CLICK, 7, 0, True, referrer=None),
        RawEvent(DAY_START + timedelta(hours=3), IMPRESSION, 1000, 2000, False),
        RawEvent(DAY_START - timedelta(seconds=1), CLICK, 1, 1, False),  # before the window
        RawEvent(DAY_START + timedelta(days=1), CLICK, 1, 1, False),  # end is exclusive
    ]
    load_events(engine, events, root)
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    rows = list(iter_feed_rows(reader, request))
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
            "NL",
            "mobile",
            "Android",
            "Chrome Mobile",
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
            None,
            None,
            None,
            None,
        ),
    ]
    csv_bytes = b"".join(stream_feed(reader, request, "csv"))
    assert csv_bytes == (
        b"datetime,tracker_id,advertiser_id,line_item_id,publisher_id,tag_id,media_buy_cost,"
        b"revenue_value,pricing_type,site_domain,cachebuster,user_agent,invalid,"
        b"country,device_type,os,browser\r\n"
        b"2026-03-09 01:00:00.000250,2,1,1,1,1,1.250000,0.500000,cpc,news.example.com,cb1,"
        b"Mozilla/5.0,0,NL,mobile,Android,Chrome Mobile\r\n"
        b"2026-03-09 02:00:00.000000,2,1,1,1,1,,0.000000,cpc,,,,1,,,,\r\n"
    )
    parsed = list(csv.reader(io.StringIO(csv_bytes.decode())))
    assert parsed[0] == list(FEED_COLUMNS)
    assert parsed[1][6] == "1.250000" and parsed[1][12] == "0"
    assert parsed[2][6] == "" and parsed[2][12] == "1"
    lines = b"".join(stream_feed(reader, request, "jsonl")).splitlines()
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
        "country": None,
        "device_type": None,
        "os": None,
        "browser": None,
    }
    imps = parse_feed_request("impression", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    (imp_row,) = list(iter_feed_rows(reader, imps))
    assert imp_row[1] == 3 and imp_row[5] == 0  # tag_id 0 when the tracker has no placement


class CountingReader:
    """The archive reader, noting how many rows each batch it hands over holds."""

    def __init__(self, reader: DuckDBRawEventReader) -> None:
        self.reader = reader
        self.fetched: list[int] = []

    def read(
        self,
        start: datetime,
        end: datetime,
        *,
        imp_type: int | None = None,
        columns: Sequence[str] | None = None,
        batch_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        for batch in self.reader.read(
            start, end, imp_type=imp_type, columns=columns, batch_rows=batch_rows
        ):
            self.fetched.append(batch.num_rows)
            yield batch


def test_feed_streams_lazily_in_chunks(
    engine: Engine, root: Path, reader: DuckDBRawEventReader
) -> None:
    n = 12_345
    events = [
        RawEvent(DAY_START + timedelta(seconds=i), CLICK_NO_PLACEMENT, i, 0, False)
        for i in range(n)
    ]
    load_events(engine, events, root)
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)

    # The rows come through a generator: nothing is read before the first row is asked for,
    # and the archive is asked for rows a batch at a time.
    counting = CountingReader(reader)
    rows = iter_feed_rows(counting, request, batch=1000)
    assert isinstance(rows, Iterator)
    assert counting.fetched == []
    first = next(rows)
    assert first[0] == "2026-03-09 00:00:00.000000"
    assert counting.fetched == [1000]
    rows.close()

    # Output arrives in bounded chunks; each chunk holds at most chunk_rows rows.
    chunk_sizes = []
    total_lines = 0
    for chunk in stream_feed(reader, request, "csv", chunk_rows=500):
        lines = chunk.count(b"\r\n")
        chunk_sizes.append(lines)
        total_lines += lines
    assert total_lines == n + 1  # header included
    assert max(chunk_sizes) <= 501 and len(chunk_sizes) >= n // 500

    # The archive is asked for rows a batch at a time: producing the first chunk of output
    # read only that chunk's rows, not the day.
    for fmt in ("jsonl", "csv"):
        counting = CountingReader(reader)
        stream = stream_feed(counting, request, fmt, chunk_rows=100)
        first_chunk = next(stream)
        if fmt == "csv":  # the header comes first, before anything is read
            assert counting.fetched == []
            first_chunk = next(stream)
        assert first_chunk.count(b"\n") == 100
        assert counting.fetched == [100]
        stream.close()


def test_feeds_read_only_committed_files(
    engine: Engine, root: Path, reader: DuckDBRawEventReader
) -> None:
    load_events(engine, [RawEvent(DAY_START + timedelta(hours=1), CLICK, 1, 1, False)], root)
    # A batch staged but never committed (not in the manifest): its file is not read.
    ParquetRawEventArchive(root).stage(
        events_to_table(
            [to_event(RawEvent(DAY_START + timedelta(hours=1), CLICK, 2, 2, False), "uncommitted")]
        ),
        "uncommitted-batch",
    )
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    rows = list(iter_feed_rows(reader, request))
    assert [row[6:8] for row in rows] == [(None, "0.000001")]


def test_click_feeds_skip_files_without_clicks(
    engine: Engine, root: Path, reader: DuckDBRawEventReader
) -> None:
    hour = DAY_START + timedelta(hours=5)
    load_events(engine, [RawEvent(hour, IMPRESSION, 1, 1, False)], root)
    load_events(engine, [RawEvent(hour, CLICK, 1, 1, False)], root)
    both = reader.files(hour, hour + timedelta(hours=1))
    clicks = reader.files(hour, hour + timedelta(hours=1), imp_type=10)
    imps = reader.files(hour, hour + timedelta(hours=1), imp_type=9)
    assert len(both) == 2 and len(clicks) == 1 and len(imps) == 1 and clicks != imps


TEXT = st.text(alphabet=st.sampled_from(list('ab,"\r\n xY\u00e9\u0130\\\t\x01/')), max_size=8)
REFERRER = st.one_of(
    st.none(),
    TEXT,
    st.builds(
        lambda scheme, user, host, rest: f"{scheme}://{user}{host}{rest}",
        st.sampled_from(["http", "HTTPS", "android-app", "x+y.z"]),
        st.sampled_from(["", "u:p@", "@"]),
        st.one_of(TEXT, st.sampled_from(["[2001:DB8::1]", "News.Example.COM", "B\u00dcCHER.de"])),
        st.sampled_from(["", "/a?b#c", ":8080/x", "?q", "#f"]),
    ),
)


def _reference_csv_line(row: tuple[Any, ...]) -> str:
    """One feed row formatted cell by cell in Python (what the CSV must equal)."""

    def text(value: str | None) -> str:
        if value is None:
            return ""
        if any(c in value for c in '",\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    (ts, tracker, advertiser, line_item, publisher, tag, cost, revenue, pricing, domain) = row[:10]
    cachebuster, user_agent, invalid, *audience = row[10:]
    return (
        f"{ts},{tracker},{advertiser},{line_item},{publisher},{tag},{cost or ''},{revenue},"
        f"{text(pricing)},{text(domain)},{text(cachebuster)},{text(user_agent)},"
        f"{1 if invalid else 0},{','.join(text(value) for value in audience)}\r\n"
    )


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine("sqlite", tmp_path) as eng:
        yield eng


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values=st.lists(
        st.tuples(
            st.integers(0, 86_399_999_999),
            REFERRER,
            st.one_of(st.none(), TEXT),
            st.one_of(st.none(), TEXT),
            st.one_of(st.integers(-(10**7), 10**13), st.sampled_from([10**18, 2**63 - 1])),
            st.booleans(),
            st.booleans(),
            st.one_of(st.none(), st.sampled_from(["US", "FR"])),
            st.one_of(st.none(), TEXT),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_csv_and_json_lines_are_the_rows_formatted_cell_by_cell(
    sqlite_engine: Engine, tmp_path: Path, values: list[tuple[Any, ...]]
) -> None:
    eng = sqlite_engine
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    reader = DuckDBRawEventReader(root, eng)
    events = [
        RawEvent(
            DAY_START + timedelta(microseconds=offset),
            CLICK,
            money,
            money // 3,
            invalid,
            ancost_used=ancost,
            cachebuster=cachebuster,
            user_agent=agent,
            referrer=referrer,
            country=country,
            device_type=family and "mobile",
            os=family,
            browser=family,
        )
        for offset, referrer, cachebuster, agent, money, ancost, invalid, country, family in values
    ]
    load_events(eng, events, root)
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    expected = "".join(_reference_csv_line(row) for row in iter_feed_rows(reader, request))
    header, _, body = b"".join(stream_feed(reader, request, "csv", chunk_rows=7)).partition(b"\r\n")
    assert header.decode().split(",") == list(FEED_COLUMNS)
    assert body.decode() == expected
    # The JSON lines likewise: what orjson gives for each row's object.
    expected_lines = b"".join(
        orjson.dumps(dict(zip(FEED_COLUMNS, row, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
        for row in iter_feed_rows(reader, request)
    )
    assert b"".join(stream_feed(reader, request, "jsonl", chunk_rows=7)) == expected_lines
    with eng.begin() as conn:
        conn.execute(t.raw_event_files.delete())


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


def test_retention_purges_old_raw_events_and_keeps_rollups(engine: Engine, root: Path) -> None:
    old = [
        RawEvent(NOW - timedelta(days=31, minutes=i), tr, 5, 5, False)
        for i, tr in enumerate(TRACKERS)
    ]
    fresh = [RawEvent(NOW - timedelta(days=29), tr, 5, 5, False) for tr in TRACKERS]
    load_events(engine, old + fresh, root)
    load_rollups(engine, old + fresh)
    with engine.connect() as conn:
        rollup_rows_before = conn.execute(
            select(func.count()).select_from(t.rollup_hourly)
        ).scalar()
    archive = ParquetRawEventArchive(root)
    retention = ArchiveRetention(archive, engine)
    assert purge_raw_events(retention, retention_days=30, now=NOW) == len(old)
    with engine.connect() as conn:
        rollup_rows_after = conn.execute(select(func.count()).select_from(t.rollup_hourly)).scalar()
    assert archived_count(engine, root) == len(fresh)
    oldest = min(row["ts"] for row in archived_events(engine, root))
    assert oldest == to_event(fresh[0], "x").ts
    assert rollup_rows_after == rollup_rows_before
    assert purge_raw_events(retention, retention_days=30, now=NOW) == 0


def test_the_periodic_purge_runs_until_cancelled(engine: Engine, root: Path, tmp_path: Any) -> None:
    old = [RawEvent(datetime.now(UTC) - timedelta(days=40), tr, 5, 5, False) for tr in TRACKERS]
    load_events(engine, old, root)
    settings = Settings.from_env(
        {"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_RAW_EVENT_RETENTION_DAYS": "30"}
    )
    assert settings.raw_events_dir == root
    retention = build_raw_event_retention(settings, engine)

    async def run() -> int:
        task = asyncio.create_task(
            purge_periodically(
                retention,
                retention_days=settings.raw_event_retention_days,
                interval_seconds=0.05,
            )
        )
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                left = archived_count(engine, root)
                if left == 0:
                    break
        finally:
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return left

    assert asyncio.run(run()) == 0
