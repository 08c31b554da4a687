"""A frame's payload split back into its records (both logs' readers use it)."""

from __future__ import annotations

import struct

import pytest

from adtrack.adapters.eventlog.segment_format import FRAME_HEAD_SIZE, decode_payload, encode_frame

RECORDS = [b"[2,1]", b'[2,"' + b"x" * 300 + b'"]', b"[3]"]


def payload_of(records: list[bytes]) -> memoryview:
    return memoryview(encode_frame(records))[FRAME_HEAD_SIZE:]


def length(n: int) -> bytes:
    return struct.pack("<I", n)


def test_the_records_come_back_in_order() -> None:
    assert decode_payload(payload_of(RECORDS), len(RECORDS)) == RECORDS
    assert decode_payload(payload_of(RECORDS[:1]), 1) == RECORDS[:1]


@pytest.mark.parametrize(
    "payload, count",
    [
        (bytes(payload_of(RECORDS))[:-1], 3),  # the last record cut short
        (bytes(payload_of(RECORDS)) + b"x", 3),  # bytes after the last record
        (bytes(payload_of(RECORDS)), 4),  # fewer records than the frame's count
        (bytes(payload_of(RECORDS)), 2),  # more records than the frame's count
        (length(1) + b"[" + length(0) + length(1) + b"]", 3),  # an empty record
        (length(1) + b"[" + length(500) + b"[2]" + length(1) + b"]", 3),  # a length past the end
        (length(5) + b"[2,1]" + b"\x01\x00", 2),  # a length cut short
    ],
)
def test_lengths_that_do_not_add_up_refuse_the_frame(payload: bytes, count: int) -> None:
    assert decode_payload(memoryview(payload), count) is None
