"""The JetStream event log's message bodies: batches (format 1) and single events (format 0)."""

from __future__ import annotations

import pytest

from adtrack.adapters.eventlog.nats_format import (
    BATCH_OVERHEAD,
    RECORD_OVERHEAD,
    FutureFormat,
    MalformedMessage,
    decode_message,
    encode_messages,
)
from adtrack.adapters.eventlog.segment_format import encode_frame, scan_frames
from tests.support.collector import event_record


def event(i: int) -> bytes:
    return event_record(
        f"fmt-{i}", tracker=1, ts=1_767_225_600_000_000, cachebuster=str(i), cost=1, revenue=2
    )


def test_a_batch_is_one_message_holding_every_record_in_order() -> None:
    records = [event(i) for i in range(50)]
    (message,) = encode_messages(records, 1 << 20)
    assert message.records == 50
    assert decode_message(message.body) == records
    # the body is a frame of the local log's segment format, readable by its scanner too
    assert message.body == encode_frame(records)
    assert scan_frames(message.body, 0, 1000).records == records


def test_the_message_id_is_derived_from_the_batch() -> None:
    records = [event(i) for i in range(5)]
    first = encode_messages(records, 1 << 20)[0].msg_id
    assert encode_messages(list(records), 1 << 20)[0].msg_id == first  # a retry: same id
    assert first.startswith("fmt-0+5-")
    others = {
        encode_messages(records[:4], 1 << 20)[0].msg_id,
        encode_messages(records[1:], 1 << 20)[0].msg_id,
        encode_messages([records[0], records[2], records[1]], 1 << 20)[0].msg_id,
    }
    assert first not in others and len(others) == 3
    # records without an event id (not written by a collector) get a digest of the content
    plain = encode_messages([b"x", b"y"], 1 << 20)[0].msg_id
    assert plain.startswith("b-") and plain != encode_messages([b"y", b"x"], 1 << 20)[0].msg_id


def test_a_batch_over_the_bound_is_split_in_order_within_it() -> None:
    records = [event(i) for i in range(300)]
    size = BATCH_OVERHEAD + sum(RECORD_OVERHEAD + len(r) for r in records)
    bound = size // 7
    messages = encode_messages(records, bound)
    assert 7 <= len(messages) <= 9
    assert all(len(m.body) <= bound for m in messages)
    assert [r for m in messages for r in decode_message(m.body)] == records
    assert len({m.msg_id for m in messages}) == len(messages)


def test_a_record_larger_than_the_bound_travels_alone() -> None:
    big = b'{"event_id":"big",' + b" " * 5000 + b"}"
    messages = encode_messages([event(1), big, event(2)], 2000)
    assert [decode_message(m.body) for m in messages] == [[event(1)], [big], [event(2)]]


def test_a_single_event_message_of_the_previous_version_is_one_record() -> None:
    assert decode_message(event(3)) == [event(3)]
    assert decode_message(b"not an event") == [b"not an event"]  # the aggregator skips it


def test_a_later_format_is_recognised_and_a_broken_batch_refused() -> None:
    with pytest.raises(FutureFormat):
        decode_message(b"ADTG" + bytes(20))
    body = bytearray(encode_frame([event(1), event(2)]))
    body[-3] ^= 0xFF
    with pytest.raises(MalformedMessage, match="CRC"):
        decode_message(bytes(body))
    with pytest.raises(MalformedMessage):
        decode_message(encode_frame([event(1)])[:-1])
    with pytest.raises(MalformedMessage):
        decode_message(b"ADTF\x00")
