"""The feeds' column-by-column formatting (CSV and JSON lines a batch at a time, what repeats
formatted once per combination) equals formatting row by row, on awkward values: text with
quotes, commas, line breaks, escapes and non-ASCII letters, nulls, ids that repeat or not,
amounts too large or negative for the fast path, timestamps on second boundaries, and text
columns as plain strings or as dictionaries (as a compacted hour is read)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.reporting.feed_stream import (
    csv_lines,
    csv_lines_row_by_row,
    jsonl_lines,
    stream_feed,
)
from adtrack.reporting.feeds import (
    SOURCE_COLUMNS,
    Memo,
    parse_feed_request,
    python_rows,
    row_objects,
    site_domain,
)
from adtrack.reporting.per_combination import per_combination
from adtrack.services.raw_event_columns import RAW_EVENT_SCHEMA
from tests.support.reporting import TRACKERS, RawEvent, load_events, migrated_engine

TEXT = st.text(alphabet=st.sampled_from(list('ab,"\r\n xY\u00e9\u0130\\\t\x01/')), max_size=8)
REFERRER = st.one_of(
    st.none(),
    TEXT,
    st.builds(
        lambda host, rest: f"https://{host}{rest}",
        st.sampled_from(["News.Example.COM", "a.b", "[2001:DB8::1]", "B\u00dcCHER.de", ""]),
        st.sampled_from(["", "/a?b#c", ":8080/x,y"]),
    ),
)
ID = st.one_of(st.sampled_from([1, 7, 42]), st.integers(0, 2**63 - 1))
FAST_MONEY = st.one_of(st.sampled_from([0, 50_000, 120_000]), st.integers(0, 10**18 - 1))
ANY_MONEY = st.one_of(FAST_MONEY, st.integers(-(10**7), -1), st.sampled_from([10**18, 2**63 - 1]))
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = int(datetime(2026, 3, 9, tzinfo=UTC).timestamp()) * 1_000_000
TIMESTAMP = st.one_of(
    st.integers(0, 86_399_999_999),
    st.integers(0, 86_399).map(lambda s: s * 1_000_000),  # on a second
    st.integers(1, 86_399).map(lambda s: s * 1_000_000 - 1),  # just before one
).map(lambda offset: DAY + offset)


def rows(money: st.SearchStrategy[int]) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Rows of :data:`SOURCE_COLUMNS`."""
    return st.lists(
        st.tuples(
            TIMESTAMP,
            ID,
            ID,
            st.sampled_from([5, 6]),
            ID,
            st.one_of(st.none(), ID),
            st.booleans(),
            money,
            money,
            st.one_of(st.none(), st.sampled_from(["cpc", "cpm", "a,b"])),
            REFERRER,
            st.one_of(st.none(), TEXT),
            st.one_of(st.none(), TEXT, st.sampled_from(["Mozilla/5.0 (X11)", "curl/8"])),
            st.booleans(),
            st.one_of(st.none(), st.sampled_from(["US", "FR"])),
            st.one_of(st.none(), st.sampled_from(["mobile", "desktop"])),
            st.one_of(st.none(), TEXT, st.just("Mac OS X")),
            st.one_of(st.none(), TEXT, st.just("Mobile Safari")),
        ),
        min_size=1,
        max_size=40,
    )


TEXT_COLUMNS = (
    "revenue_type",
    "referrer",
    "cachebuster",
    "user_agent",
    "country",
    "device_type",
    "os",
    "browser",
)


def batch_of(values: list[tuple[Any, ...]], as_dictionaries: frozenset[str]) -> pa.RecordBatch:
    """A record batch of ``values`` typed as the archive's columns, the text columns named in
    ``as_dictionaries`` as dictionaries."""
    columns = []
    for name, column in zip(SOURCE_COLUMNS, zip(*values, strict=True), strict=True):
        array = pa.array(column, RAW_EVENT_SCHEMA.field(name).type)
        columns.append(array.dictionary_encode() if name in as_dictionaries else array)
    return pa.RecordBatch.from_arrays(columns, names=list(SOURCE_COLUMNS))


def row_by_row_jsonl(records: pa.RecordBatch) -> bytes:
    return b"".join(
        orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        for obj in row_objects(python_rows(records), Memo(site_domain))
    )


@settings(max_examples=300, deadline=None)
@given(
    values=rows(ANY_MONEY),
    as_dictionaries=st.frozensets(st.sampled_from(TEXT_COLUMNS)),
    offset=st.integers(0, 3),
)
def test_a_batch_formats_as_row_by_row(
    values: list[tuple[Any, ...]], as_dictionaries: frozenset[str], offset: int
) -> None:
    # A slice too: the archive's batches are often slices of what was read.
    records = batch_of(values, as_dictionaries).slice(min(offset, len(values) - 1))
    expected = csv_lines_row_by_row(records, Memo(site_domain))
    assert csv_lines(records, Memo(site_domain)) == expected
    assert jsonl_lines(records, Memo(site_domain)) == row_by_row_jsonl(records)


def test_a_batch_of_repeated_values_formats_each_row() -> None:
    """The pieces formatted once per combination land on every row that has it."""
    values = [
        (
            DAY + i * 500_000,
            9,
            2,
            5,
            3,
            None if i % 2 else 4,
            i == 1,
            1_500_000,
            10**18 - 1,
            "cpc",
            "http://A.example/x",
            f"c{i}",
            'say "hi"',
            i == 2,
            None if i == 1 else "US",
            "mobile",
            "iOS",
            "Mobile Safari",
        )
        for i in range(3)
    ]
    records = batch_of(values, frozenset({"user_agent"}))
    assert csv_lines(records, Memo(site_domain)).decode().splitlines() == [
        '2026-03-09 00:00:00.000000,9,2,5,3,4,,999999999999.999999,cpc,a.example,c0,"say ""hi""",0,'
        "US,mobile,iOS,Mobile Safari",
        "2026-03-09 00:00:00.500000,9,2,5,3,0,1.500000,999999999999.999999,cpc,a.example,c1,"
        '"say ""hi""",0,,mobile,iOS,Mobile Safari',
        '2026-03-09 00:00:01.000000,9,2,5,3,4,,999999999999.999999,cpc,a.example,c2,"say ""hi""",1,'
        "US,mobile,iOS,Mobile Safari",
    ]


@settings(max_examples=200, deadline=None)
@given(
    columns=st.lists(
        st.tuples(
            st.lists(st.one_of(st.none(), st.integers(0, 69_999)), min_size=30, max_size=30),
            # Dictionary sizes: four of 60,000 or more overflow a 62-bit combination number.
            st.one_of(st.integers(1, 4), st.integers(60_000, 70_000)),
        ),
        min_size=1,
        max_size=5,
    ),
    rows_kept=st.integers(1, 30),
)
def test_per_combination_equals_formatting_every_row(
    columns: list[tuple[list[int | None], int]], rows_kept: int
) -> None:
    arrays = tuple(
        pa.DictionaryArray.from_arrays(
            pa.array([None if i is None else i % size for i in indices], pa.int32()),
            pa.array([f"v{v}" for v in range(size)]),
        ).slice(0, rows_kept)
        for indices, size in columns
    )

    def cells(*plain: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(*(pc.fill_null(a, "-") for a in plain), "|")

    expected = cells(*(a.dictionary_decode() for a in arrays))
    assert per_combination(arrays, cells).equals(expected)


def test_a_compacted_day_streams_as_row_by_row(tmp_path: Path) -> None:
    """Through the archive: a compacted hour is read with its text as dictionaries, and the
    feed is the same bytes as formatted row by row."""
    request = parse_feed_request("click", "2026-03-09", "2026-03-10", retention_days=30, now=NOW)
    start = request.start
    awkward = ['a,"b"', "line\r\nbreak", "\u00e9\u0130\\", None, "plain"]
    events = [
        RawEvent(
            start + timedelta(seconds=i // 3, microseconds=i % 3),
            TRACKERS[1 + i % 2 * 2],
            i * 1_000,
            i * 7,
            i % 5 == 0,
            ancost_used=i % 2 == 0,
            cachebuster=awkward[i % 5],
            user_agent=awkward[(i + 1) % 5],
            referrer=f"https://Site{i % 4}.example/{awkward[i % 5]}",
            country=("US", "NL", None)[i % 3],
            device_type=("mobile", "tv", None)[i % 3],
            os=awkward[(i + 2) % 5],
            browser=awkward[(i + 3) % 5],
        )
        for i in range(500)
    ]
    root = tmp_path / "raw-events"
    engine: Engine
    with migrated_engine("sqlite", tmp_path) as engine:
        load_events(engine, events, root)
        ParquetRawEventArchive(root).compact(engine, start + timedelta(days=1))
        reader = DuckDBRawEventReader(root, engine)
        (read,) = list(reader.read(request.start, request.end, columns=SOURCE_COLUMNS))
        assert pa.types.is_dictionary(read.schema.field("user_agent").type)
        csv = b"".join(stream_feed(reader, request, "csv", chunk_rows=64))
        assert csv.partition(b"\r\n")[2] == csv_lines_row_by_row(read, Memo(site_domain))
        jsonl = b"".join(stream_feed(reader, request, "jsonl", chunk_rows=64))
        assert jsonl == row_by_row_jsonl(read)
