"""A feed as bytes: CSV or JSON lines, streamed chunk by chunk (``feeds.py`` says what the rows
hold).

Each chunk is one batch of rows read from the archive, formatted column by column by Arrow's
kernels, what repeats from row to row once per distinct combination
(:func:`~adtrack.reporting.per_combination.per_combination`). The row-by-row formatting stays as
the path for amounts Arrow's decimals cannot show, and as the reference the tests hold the
kernels to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from adtrack.reporting.conversion_feed import stream_conversion_feed
from adtrack.reporting.feeds import (
    CHUNK_ROWS,
    FEED_COLUMNS,
    ArrowRow,
    FeedFormat,
    FeedKind,
    FeedRequest,
    Memo,
    money_text,
    python_rows,
    record_batches,
    row_objects,
    site_domain,
    utc_texts,
)
from adtrack.reporting.per_combination import per_combination
from adtrack.services.ports import RawEventReader

__all__ = ["csv_lines", "csv_lines_row_by_row", "jsonl_lines", "stream_feed"]


def stream_feed(
    reader: RawEventReader,
    request: FeedRequest,
    fmt: FeedFormat | str = FeedFormat.CSV,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[bytes]:
    """The feed as chunks of bytes, one chunk per ``chunk_rows`` rows: CSV (header first;
    empty cells for nothing, ``invalid`` as 0/1) or JSON lines (one object per row; null for
    nothing, ``invalid`` as a boolean)."""
    if request.kind is FeedKind.CONVERSION:
        yield from stream_conversion_feed(reader, request, fmt)
    elif FeedFormat(fmt) is FeedFormat.JSONL:
        yield from _jsonl_chunks(reader, request, chunk_rows)
    else:
        yield from _csv_chunks(reader, request, chunk_rows)


def _csv_text(value: str | None) -> str:
    """A CSV cell for free text (RFC 4180): quoted only when it must be."""
    if value is None:
        return ""
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_chunks(reader: RawEventReader, request: FeedRequest, chunk_rows: int) -> Iterator[bytes]:
    """CSV lines, a batch of rows at a time, formatted column by column in Arrow (the hot
    loop of the feed; :func:`csv_lines` says how)."""
    domains = Memo(site_domain)
    yield (",".join(FEED_COLUMNS) + "\r\n").encode()
    for records in record_batches(reader, request, chunk_rows):
        yield csv_lines(records, domains)


_QUOTE_TRIGGERS = (b'"', b",", b"\n", b"\r")


def _text(value: str) -> pa.StringScalar:
    # Constants go to the kernels as typed scalars: a bare Python value makes pyarrow infer
    # its type on every call, which costs more than formatting a small batch.
    return pa.scalar(value, pa.string())


_NOTHING, _COMMA = _text(""), _text(",")
_NO_TAG = pa.scalar(0, pa.int64())  # the tag of a tracker without a placement
_CSV_VALID, _CSV_INVALID, _CSV_END = _text("0"), _text("1"), _text("\r\n")
_JSON_START, _JSON_NULL = _text('{"datetime":"'), _text("null")
_JSON_QUOTE = _text('"')
_JSON_VALID, _JSON_INVALID = _text(',"invalid":false'), _text(',"invalid":true')
# Where the audience columns start in a batch of SOURCE_COLUMNS (they are the last ones).
_AUDIENCE_START = -4


def csv_lines(records: pa.RecordBatch, domains: Memo[str | None]) -> bytes:
    """The CSV lines of ``records`` (:data:`SOURCE_COLUMNS`), byte for byte what
    :func:`_csv_line` gives for each row, built column by column with Arrow kernels. What
    repeats from row to row is formatted once per distinct combination
    (:func:`~adtrack.reporting.per_combination.per_combination`): the ids; the media buy
    cost; the revenue, pricing type and site domain; the user agent and invalid flag. The
    timestamp and the cachebuster are formatted for every row. The six pieces of a row are
    joined with commas, and the lines, one after the other in one buffer, are the output.
    Amounts a decimal cannot show the way :func:`money_text` does (negative, or 19 digits) take
    the row-by-row path."""
    if not records.num_rows:
        return b""
    ts, *ids, ancost_used, cost, revenue, pricing, referrer, cachebuster, agent, invalid = (
        records.columns[:_AUDIENCE_START]
    )
    audience = tuple(records.columns[_AUDIENCE_START:])
    if not (_fits_money(cost) and _fits_money(revenue)):
        return csv_lines_row_by_row(records, domains)
    lines = pc.binary_join_element_wise(
        utc_texts(ts),
        per_combination(tuple(ids), _csv_ids),
        per_combination((_charged_cost(ancost_used, cost),), _csv_cost),
        per_combination(
            (revenue, pricing, referrer),
            lambda revenues, types, pages: _csv_revenues(revenues, types, pages, domains),
        ),
        _text_cells(cachebuster),
        per_combination((agent, invalid), _csv_ends),
        per_combination(audience, _csv_audience),
        _COMMA,
    )
    return _joined_bytes(lines)


def _csv_ids(*ids: pa.Array) -> pa.Array:
    """``tracker,advertiser,line item,publisher,tag`` (the tag 0 without a placement)."""
    return pc.binary_join_element_wise(*_id_texts(ids), _COMMA)


def _id_texts(ids: tuple[pa.Array, ...]) -> list[pa.Array]:
    *named, placement = ids
    return [pc.cast(column, pa.string()) for column in (*named, pc.fill_null(placement, _NO_TAG))]


def _csv_cost(cost: pa.Array) -> pa.Array:
    """The media buy cost (nothing where none was charged)."""
    return pc.fill_null(_money_texts(cost), _NOTHING)


def _csv_revenues(
    revenue: pa.Array, pricing: pa.Array, referrer: pa.Array, domains: Memo[str | None]
) -> pa.Array:
    """``revenue,pricing type,site domain``."""
    return pc.binary_join_element_wise(
        _money_texts(revenue),
        _text_cells(pricing),
        _text_cells(_site_domains(referrer, domains)),
        _COMMA,
    )


def _csv_ends(agent: pa.Array, invalid: pa.Array) -> pa.Array:
    """``user agent,invalid``."""
    return pc.binary_join_element_wise(
        _text_cells(agent), pc.if_else(invalid, _CSV_INVALID, _CSV_VALID), _COMMA
    )


def _csv_audience(*audience: pa.Array) -> pa.Array:
    """``country,device type,os,browser`` and the line break."""
    cells = [_text_cells(column) for column in audience]
    return pc.binary_join_element_wise(
        pc.binary_join_element_wise(*cells, _COMMA), _CSV_END, _NOTHING
    )


def _charged_cost(ancost_used: pa.Array, cost: pa.Array) -> pa.Array:
    """The media cost where the event carried one, null elsewhere (the feed shows none)."""
    return pc.if_else(ancost_used, cost, pa.scalar(None, cost.type))


def _plain(values: pa.Array) -> pa.Array:
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


_MONEY = pa.decimal64(18, 6)  # micros read as units with six decimals: "1.250000"
_MAX_MONEY_MICROS = 10**18  # what 18 digits hold


def _money_texts(micros: pa.Array) -> pa.Array:
    """:func:`money_text` of each amount (from 0 to 10**18 - 1 micros): the same 64-bit integers
    read as decimals with six places (no copy), printed."""
    as_money = pa.Array.from_buffers(
        _MONEY, len(micros), micros.buffers()[:2], offset=micros.offset
    )
    return pc.cast(as_money, pa.string())


def _holds(values: pa.Array, needles: tuple[bytes, ...]) -> bool:
    """Whether the bytes behind ``values`` (a string array) hold any of ``needles`` (those of
    rows outside a sliced array count too: a yes only costs the careful path)."""
    data = values.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return any(needle in raw for needle in needles)


def _text_cells(values: pa.Array) -> pa.Array:
    """:func:`_csv_text` of each value (nothing for null), computed once per distinct value,
    and only when some value may need quotes."""
    values = _plain(values)
    if not _holds(values, _QUOTE_TRIGGERS):
        return pc.fill_null(values, _NOTHING)
    encoded = pc.dictionary_encode(values)
    cells = pa.array([_csv_text(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.fill_null(cells.take(encoded.indices), _NOTHING)


def _joined_bytes(lines: pa.Array) -> bytes:
    """The strings of ``lines`` one after the other: the slice of its data buffer they
    occupy (no copy per line)."""
    if not len(lines):
        return b""
    _validity, offsets_buffer, data = lines.buffers()
    offsets = memoryview(offsets_buffer).cast("i")
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    joined: bytes = data.slice(first, last - first).to_pybytes()
    return joined


def _fits_money(micros: pa.Array) -> bool:
    low, high = pc.min_max(micros).values()
    return low.as_py() is None or (low.as_py() >= 0 and high.as_py() < _MAX_MONEY_MICROS)


def _site_domains(referrers: pa.Array, domains: Memo[str | None]) -> pa.Array:
    """:func:`site_domain` of each referrer, computed once per distinct referrer (a day of
    clicks comes from far fewer pages than clicks); null where there is no referrer."""
    encoded = pc.dictionary_encode(referrers)
    hosts = pa.array([domains[r] for r in encoded.dictionary.to_pylist()], pa.string())
    return hosts.take(encoded.indices)


def csv_lines_row_by_row(records: pa.RecordBatch, domains: Memo[str | None]) -> bytes:
    columns = [utc_texts(records.column(0)).to_pylist()]
    columns.extend(records.column(i).to_pylist() for i in range(1, records.num_columns))
    return "".join([_csv_line(row, domains) for row in zip(*columns, strict=True)]).encode()


def _csv_line(row: ArrowRow, domains: Memo[str | None]) -> str:
    """One CSV line from one row of :data:`SOURCE_COLUMNS` (the timestamp already as text):
    numbers and our own formatted values never need quoting; free text goes through
    :func:`_csv_text`."""
    (
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
        country,
        device_type,
        os,
        browser,
    ) = row
    cell = _csv_text
    return (
        f"{ts},{tracker},{advertiser},{line_item},{publisher},{tag or 0},"
        f"{money_text(cost) if ancost_used else ''},{money_text(revenue)},{cell(pricing)},"
        f"{cell(domains[referrer])},{cell(cachebuster)},{cell(user_agent)},"
        f"{1 if invalid else 0},{cell(country)},{cell(device_type)},{cell(os)},{cell(browser)}\r\n"
    )


def _jsonl_chunks(reader: RawEventReader, request: FeedRequest, chunk_rows: int) -> Iterator[bytes]:
    """JSON lines, a batch of rows at a time, built column by column in Arrow like the CSV
    (:func:`jsonl_lines`)."""
    domains = Memo(site_domain)
    for records in record_batches(reader, request, chunk_rows):
        yield jsonl_lines(records, domains)


def jsonl_lines(records: pa.RecordBatch, domains: Memo[str | None]) -> bytes:
    """The JSON lines of ``records``, byte for byte what ``orjson.dumps`` gives for each
    row's object (:func:`~adtrack.reporting.feeds.row_objects`), built like the CSV
    (:func:`csv_lines`): the keys and punctuation are constant parts of the pieces, which are
    formatted once per distinct combination except the timestamp and the cachebuster (text
    escaped by orjson itself, once per distinct value that needs escaping), and joined in one
    kernel. Amounts a decimal cannot show the way :func:`money_text` does take the row-by-row
    path."""
    if not records.num_rows:
        return b""
    ts, *ids, ancost_used, cost, revenue, pricing, referrer, cachebuster, agent, invalid = (
        records.columns[:_AUDIENCE_START]
    )
    audience = tuple(records.columns[_AUDIENCE_START:])
    if not (_fits_money(cost) and _fits_money(revenue)):
        return b"".join(
            orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
            for obj in row_objects(python_rows(records), domains)
        )
    lines = pc.binary_join_element_wise(
        _JSON_START,
        utc_texts(ts),
        per_combination(tuple(ids), _json_ids),
        per_combination((_charged_cost(ancost_used, cost),), _json_cost),
        per_combination(
            (revenue, pricing, referrer),
            lambda revenues, types, pages: _json_revenues(revenues, types, pages, domains),
        ),
        _json_texts(cachebuster),
        per_combination((agent, invalid), _json_ends),
        per_combination(audience, _json_audience),
        _NOTHING,
    )
    return _joined_bytes(lines)


def _json_ids(*ids: pa.Array) -> pa.Array:
    """The end of the datetime and the ids: ``","tracker_id":1,...,"tag_id":0``."""
    parts: list[pa.Array | pa.Scalar] = []
    for key, texts in zip(_JSON_ID_KEYS, _id_texts(ids), strict=True):
        parts += [key, texts]
    return pc.binary_join_element_wise(*parts, _NOTHING)


_JSON_ID_KEYS = tuple(
    _text(f'{before}"{name}":')
    for before, name in zip(
        ('",', ",", ",", ",", ","),
        ("tracker_id", "advertiser_id", "line_item_id", "publisher_id", "tag_id"),
        strict=True,
    )
)


def _json_cost(cost: pa.Array) -> pa.Array:
    """``,"media_buy_cost":"1.000000"`` (null where none was charged)."""
    charged = pc.binary_join_element_wise(_JSON_QUOTE, _money_texts(cost), _JSON_QUOTE, _NOTHING)
    return pc.binary_join_element_wise(
        _text(',"media_buy_cost":'), pc.fill_null(charged, _JSON_NULL), _NOTHING
    )


def _json_revenues(
    revenue: pa.Array, pricing: pa.Array, referrer: pa.Array, domains: Memo[str | None]
) -> pa.Array:
    """``,"revenue_value":"2.000000","pricing_type":"cpc","site_domain":"example.com",``
    ``"cachebuster":`` (the domain ``""`` when there is none)."""
    return pc.binary_join_element_wise(
        _text(',"revenue_value":"'),
        _money_texts(revenue),
        _text('","pricing_type":'),
        _json_texts(pricing),
        _text(',"site_domain":'),
        _json_texts(pc.fill_null(_site_domains(referrer, domains), _NOTHING)),
        _text(',"cachebuster":'),
        _NOTHING,
    )


def _json_ends(agent: pa.Array, invalid: pa.Array) -> pa.Array:
    """``,"user_agent":"...","invalid":false``."""
    return pc.binary_join_element_wise(
        _text(',"user_agent":'),
        _json_texts(agent),
        pc.if_else(invalid, _JSON_INVALID, _JSON_VALID),
        _NOTHING,
    )


_JSON_AUDIENCE_KEYS = tuple(
    _text(f',"{name}":') for name in ("country", "device_type", "os", "browser")
)
_JSON_END = _text("}\n")


def _json_audience(*audience: pa.Array) -> pa.Array:
    """``,"country":"US","device_type":"mobile","os":"iOS","browser":null}`` and the line
    break."""
    parts: list[pa.Array | pa.Scalar] = []
    for key, column in zip(_JSON_AUDIENCE_KEYS, audience, strict=True):
        parts += [key, _json_texts(column)]
    return pc.binary_join_element_wise(*parts, _JSON_END, _NOTHING)


# What orjson escapes in a string: the quote, the backslash and control characters.
_JSON_ESCAPED = re.compile(rb'["\\\x00-\x1f]')


def _json_texts(values: pa.Array) -> pa.Array:
    """Each value as JSON (``null`` for null): in quotes as it is when nothing in the column
    needs escaping, else through orjson once per distinct value."""
    values = _plain(values)
    data = values.buffers()[2]
    if data is not None and _JSON_ESCAPED.search(data.to_pybytes()):
        encoded = pc.dictionary_encode(values)
        texts = [orjson.dumps(v).decode() for v in encoded.dictionary.to_pylist()]
        return pc.fill_null(pa.array(texts, pa.string()).take(encoded.indices), _JSON_NULL)
    quoted = pc.binary_join_element_wise(_JSON_QUOTE, values, _JSON_QUOTE, _NOTHING)
    return pc.fill_null(quoted, _JSON_NULL)
