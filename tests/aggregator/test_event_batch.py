"""The aggregator's batch decoder keeps exactly what ``Event.from_bytes`` keeps, in log order,
whichever path (the fast typed decoder or record by record) a batch takes; and the Arrow fold
equals a plain sum."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtrack.aggregator.event_batch import decode_batch
from adtrack.aggregator.rollup import fold
from adtrack.domain.epoch_hours import HOUR_MICROS
from adtrack.domain.events import (
    ADDED_IN_FORMAT_3,
    TS_MAX,
    TS_MIN,
    Event,
    ImpType,
    MalformedEvent,
)
from adtrack.services.ports import InvalidKey, RollupKey
from adtrack.services.raw_event_columns import RAW_EVENT_SCHEMA, events_to_table
from tests.support.events import AN_IMPRESSION


def rows(table: pa.Table) -> list[Event]:
    columns = [table[name].to_pylist() for name in Event._fields]
    for name in ("ts", "source_ts"):  # times as epoch micros, as events hold them
        columns[Event._fields.index(name)] = table[name].cast(pa.int64()).to_pylist()
    return [Event._make(values) for values in zip(*columns, strict=True)]


def reference(records: list[bytes]) -> tuple[list[Event], list[bytes]]:
    kept: list[Event] = []
    refused: list[bytes] = []
    for raw in records:
        try:
            kept.append(Event.from_bytes(raw))
        except MalformedEvent:
            refused.append(raw)
    return kept, refused


GOOD = AN_IMPRESSION._asdict()
TWO_IN_ONE = AN_IMPRESSION.to_bytes() + b"," + AN_IMPRESSION.to_bytes()  # not one record
# Values of each kind the fast decoder must take, or leave to from_bytes (which cuts, drops,
# coerces or refuses them).
VARIANTS: dict[str, list[Any]] = {
    "event_id": ["e1", "", "x" * 41, "a\x00b", 7],
    "ts": [1_767_225_600_000_000, -5, 2**63, 1.5, "1", -(2**62), TS_MIN - 1, TS_MAX, TS_MAX + 1],
    "imp_type": [9, 10, 11, True, 12, 2**15, -(2**40)],  # (12 and up: no impression type)
    "tracker_id": [3, 2**70, None],
    "placement_id": [None, 4, "4"],
    "cachebuster": [None, "123", "9" * 300, "a\x00b", 12],
    "user_agent": [None, "Mozilla/5.0 " * 50],
    "revenue_type": ["cpm", None, "x" * 20],
    "invalid": [False, True, 1, None],
    "invalid_reason": [None, "bot", "r" * 40],
    "conversion_pixel_id": [None, 5],
    "order_id": [None, "A-1"],
}
# Values a fast decoder takes as they are: a batch of only these takes a fast path whole.
CLEAN_VARIANTS: dict[str, list[Any]] = {
    "imp_type": [9, 10, 11],
    "placement_id": [None, 4],
    "cachebuster": [None, "123"],
    "invalid": [False, True],
    "conversion_pixel_id": [None, 5],
    "order_id": [None, "A-1"],
}
HIT_FIELDS = Event._fields[: -len(ADDED_IN_FORMAT_3)]  # a record of format 2


@st.composite
def record(draw: st.DrawFn, messy: bool = True) -> bytes:
    """A record; unless ``messy``, a hit in format 2 or a conversion in format 3 that a fast
    decoder takes as it is."""
    if not messy:
        data = dict(GOOD, event_id=draw(st.uuids()).hex)
        for name in draw(st.lists(st.sampled_from(sorted(CLEAN_VARIANTS)), max_size=3)):
            data[name] = draw(st.sampled_from(CLEAN_VARIANTS[name]))
        clean_format = draw(st.sampled_from([2, 3]))
        fields = Event._fields if clean_format == 3 else HIT_FIELDS
        return json.dumps([clean_format, *(data[name] for name in fields)]).encode()
    if draw(st.integers(0, 20)) == 0:
        return draw(
            st.sampled_from(
                [b"not json", b"[]", b"{}", b'{"event_id": "e"}', b"[1]", b"[2]", TWO_IN_ONE]
            )
        )
    data = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(sorted(VARIANTS)), max_size=3)):
        value = draw(st.sampled_from(VARIANTS[name]))
        if value is None and draw(st.booleans()):
            data.pop(name, None)  # missing, not null
        else:
            data[name] = value
    data["event_id"] = data.get("event_id", "x") if draw(st.booleans()) else draw(st.uuids()).hex
    if draw(st.integers(0, 3)) == 0:  # the keyed layout of records before format 1
        return json.dumps(data).encode()  # the standard library writes integers of any size
    # the record format's number: hits in format 2, conversions in 3, or no format's number
    fmt = draw(st.sampled_from([2, 2, 2, 3, 3, 1, True, "2"]))
    fields = Event._fields if fmt == 3 or draw(st.integers(0, 10)) == 0 else HIT_FIELDS
    values = [data.get(name) for name in fields]
    layout = draw(st.integers(0, 10))
    if layout == 0:
        values = values[:-1]  # a field short
    elif layout == 1:
        values.append(None)  # a field too many
    return json.dumps([fmt, *values]).encode()


@settings(max_examples=300, deadline=None)
@given(
    records=st.one_of(
        st.lists(record(), max_size=12),
        # clean batches, some with one messy record
        st.tuples(
            st.lists(record(messy=False), min_size=1, max_size=12), st.lists(record(), max_size=1)
        ).flatmap(lambda drawn: st.permutations(drawn[0] + drawn[1])),
    )
)
def test_a_batch_decodes_to_what_from_bytes_keeps_in_log_order(records: list[bytes]) -> None:
    kept, refused = reference(records)
    # whole, and in parts of 1 to 5 records (a real batch is decoded a thousand at a time)
    for part_size in (1_000, 1, 2, 5):
        decoded = decode_batch(records, part_size=part_size)
        assert decoded.table.schema == RAW_EVENT_SCHEMA
        assert rows(decoded.table) == kept
        assert [raw for raw, _ in decoded.malformed] == refused


def test_a_batch_of_several_parts_is_one_table_in_log_order() -> None:
    events = [
        AN_IMPRESSION._replace(event_id=f"e{i}", ts=AN_IMPRESSION.ts + i) for i in range(2_500)
    ]
    records = [event.to_bytes() for event in events]
    records[1_200] = b"not json"  # the second part goes record by record
    conversion = events[2_100]._replace(imp_type=ImpType.CONVERSION, conversion_pixel_id=5)
    records[2_100] = conversion.to_bytes()  # the third part has a conversion among its hits
    decoded = decode_batch(records)
    kept, refused = reference(records)
    assert refused == [b"not json"] and conversion in kept
    assert rows(decoded.table) == kept
    assert [raw for raw, _ in decoded.malformed] == refused
    assert decoded.table.column("event_id").num_chunks == 1


def test_a_clean_batch_takes_the_fast_path_and_keeps_every_field() -> None:
    events = [
        AN_IMPRESSION._replace(event_id=f"e{i}", ts=AN_IMPRESSION.ts + i, placement_id=None)
        for i in range(50)
    ]
    decoded = decode_batch([event.to_bytes() for event in events])
    assert rows(decoded.table) == events and decoded.malformed == []


def test_a_record_is_its_format_number_then_the_fields_in_order() -> None:
    """A hit (no conversion fields) in format 2, as the collector writes it; a conversion in
    format 3; each read back as it was, by ``from_bytes`` and by the batch decoder."""
    seen = AN_IMPRESSION._replace(
        country="NL", device_type="mobile", os="Android", browser="Chrome Mobile"
    )
    assert orjson.loads(seen.to_bytes()) == [2, *seen[: -len(ADDED_IN_FORMAT_3)]]
    converted = seen._replace(imp_type=11, conversion_pixel_id=4, order_id="A-1")
    assert orjson.loads(converted.to_bytes()) == [3, *converted]
    for event in (seen, converted):
        assert Event.from_bytes(event.to_bytes()) == event
    assert rows(decode_batch([seen.to_bytes(), converted.to_bytes()]).table) == [seen, converted]


A_CONVERSION = AN_IMPRESSION._replace(
    event_id="conv-1",
    imp_type=11,
    cachebuster=None,
    conversion_pixel_id=4,
    order_id="order-77",
    attribution="post_click",
    source_event_id="click-9",
    source_ts=AN_IMPRESSION.ts - 60_000_000,
)


def hit_record(event: Event) -> bytes:
    """``event`` as the collector writes a hit: format 2, without the conversion fields."""
    return orjson.dumps([2, *event[: -len(ADDED_IN_FORMAT_3)]])


def test_hits_of_format_2_and_conversions_of_format_3_decode_together() -> None:
    hits = [AN_IMPRESSION._replace(event_id=f"h{i}") for i in range(3)]
    records = [hit_record(hits[0]), A_CONVERSION.to_bytes(), hit_record(hits[1])]
    records.append(orjson.dumps([3, *hits[2]]))  # a hit in format 3 is read too
    expected = [hits[0], A_CONVERSION, hits[1], hits[2]]
    assert [Event.from_bytes(r) for r in records] == expected
    decoded = decode_batch(records)
    assert rows(decoded.table) == expected and decoded.malformed == []
    # only hits: the conversion columns are all null
    only_hits = decode_batch([hit_record(h) for h in hits]).table
    assert only_hits["conversion_pixel_id"].null_count == 3
    assert rows(only_hits) == hits
    # a batch the fast decoder refuses as a whole still reads each conversion field
    with_nul = [hit_record(hits[0]._replace(ip="a\x00b")), A_CONVERSION.to_bytes()]
    assert rows(decode_batch(with_nul).table) == [hits[0]._replace(ip="ab"), A_CONVERSION]


def test_a_record_of_format_2_with_the_conversion_fields_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        Event.from_bytes(b"[2" + A_CONVERSION.to_bytes()[2:])
    with pytest.raises(MalformedEvent):
        Event.from_bytes(hit_record(A_CONVERSION).replace(b"[2", b"[3", 1))
    decoded = decode_batch([b"[2" + A_CONVERSION.to_bytes()[2:], A_CONVERSION.to_bytes()])
    assert rows(decoded.table) == [A_CONVERSION] and len(decoded.malformed) == 1


def test_conversions_fold_into_their_own_counters_never_as_impressions() -> None:
    unattributed = A_CONVERSION._replace(
        event_id="conv-2", attribution=None, attribution_reason="forged"
    )
    invalid = A_CONVERSION._replace(event_id="conv-3", invalid=True, invalid_reason="invalid_click")
    view = A_CONVERSION._replace(event_id="conv-4", attribution="post_view")
    delta = fold([A_CONVERSION, AN_IMPRESSION, unattributed, invalid, view])
    assert sorted(key.imp_type for key in delta.rows) == [9, 11]
    [(key, counted)] = [(k, c) for k, c in delta.rows.items() if k.imp_type == 11]
    assert key.tracker_id == A_CONVERSION.tracker_id
    assert counted.conversions == 2 and counted.conversion_revenue_micros == 2 * 2_500
    assert (counted.post_click_conversions, counted.post_view_conversions) == (1, 1)
    assert (counted.imps, counted.invalid_imps, counted.booked_revenue_micros) == (0, 0, 0)
    assert counted.media_cost_micros == 0
    [impression] = [c for k, c in delta.rows.items() if k.imp_type == 9]
    assert impression.conversions == 0 and impression.imps == 1
    assert delta.invalid == {InvalidKey(key.hour, 11, key.tracker_id, "invalid_click"): 1}


# The fields format 2 added; records written before it hold none of them (nor format 3's).
FORMAT_2_FIELDS = (
    "country",
    "device_type",
    "os",
    "browser",
    "view_state",
    "impression_event_id",
    *ADDED_IN_FORMAT_3,
)


def test_records_of_earlier_formats_are_read_with_the_fields_they_lack_as_none() -> None:
    old = AN_IMPRESSION._replace(user_agent="Mozilla/5.0", ip="203.0.113.0")
    values = old._asdict()
    format_1 = orjson.dumps(
        [1, *(value for name, value in values.items() if name not in FORMAT_2_FIELDS)]
    )
    keyed = orjson.dumps(  # as versions before format 1 wrote it
        {name: value for name, value in values.items() if name not in FORMAT_2_FIELDS}
    )
    assert all(getattr(old, name) is None for name in FORMAT_2_FIELDS)
    assert Event.from_bytes(format_1) == old
    assert Event.from_bytes(keyed) == old
    decoded = decode_batch([format_1, keyed, old.to_bytes()])
    assert rows(decoded.table) == [old] * 3 and decoded.malformed == []
    with pytest.raises(MalformedEvent):  # format 1 with format 2's length
        Event.from_bytes(b"[1" + old.to_bytes()[2:])


def test_the_arrow_fold_equals_a_plain_sum() -> None:
    base = AN_IMPRESSION._replace(ts=10 * HOUR_MICROS + 5, placement_id=7, payment_rule_id=3)
    events = [
        base._replace(event_id="a", media_cost_micros=100),
        base._replace(event_id="b", media_cost_micros=50, placement_id=None),
        base._replace(event_id="c", invalid=True, invalid_reason=None, media_cost_micros=999),
        base._replace(
            event_id="d", imp_type=10, ts=11 * HOUR_MICROS, invalid=True, invalid_reason="bot"
        ),  # fmt: skip
        base._replace(event_id="e", ts=-1),  # before 1970: hour -1, not 0
    ]
    delta = fold(events)
    dims = (base.advertiser_id, base.line_item_id, base.publisher_id)
    key = RollupKey(10, 9, base.tracker_id, *dims, 7, 3)
    assert delta.rows[key].imps == 1 and delta.rows[key].invalid_imps == 1
    assert delta.rows[key].media_cost_micros == 100  # invalid traffic costs nothing
    assert delta.rows[key._replace(placement_id=0)].media_cost_micros == 50
    assert delta.rows[key._replace(hour=11, imp_type=10)].invalid_clicks == 1
    assert delta.rows[key._replace(hour=-1)].imps == 1
    assert delta.invalid == {
        InvalidKey(10, 9, base.tracker_id, "unspecified"): 1,
        InvalidKey(11, 10, base.tracker_id, "bot"): 1,
    }
    assert fold([]).rows == {} and events_to_table([]).num_rows == 0


@pytest.mark.parametrize("imp_type", [12, 2**15], ids=["unknown", "beyond-16-bits"])
def test_a_record_of_no_impression_type_is_set_aside_and_the_others_kept(imp_type: int) -> None:
    good = [AN_IMPRESSION._replace(event_id=f"e{i}") for i in range(3)]
    bad = hit_record(AN_IMPRESSION._replace(event_id="bad", imp_type=imp_type))
    decoded = decode_batch([hit_record(good[0]), bad, hit_record(good[1]), hit_record(good[2])])
    assert rows(decoded.table) == good
    assert [raw for raw, _ in decoded.malformed] == [bad]
    assert f"imp_type {imp_type} is not" in str(decoded.malformed[0][1])
