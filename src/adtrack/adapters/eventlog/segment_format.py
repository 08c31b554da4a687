"""The on-disk format of the local event log's segment files (no I/O policy here, just bytes).

A segment file is a 16-byte header followed by frames, one frame per ``append`` call::

    header  0   8  b"ADTRKSEG"
            8   4  format version (u32, little-endian) = 1
            12  4  reserved (0)

    frame   0   4  b"ADTF"
            4   4  payload length in bytes (u32)
            8   4  record count (u32, >= 1)
            12  4  CRC32 of frame bytes 0..11 followed by the payload
            16  n  payload: for each record, its length (u32) then its bytes

The CRC covers the whole batch, so a frame is valid only if every byte of it reached the file:
a reader delivers all the records of an ``append`` or none of them. A torn frame (a crash in the
middle of a write) fails the length or CRC check and is never delivered.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

# zlib's CRC-32, computed with ISA-L's vector instructions: the same values as ``zlib.crc32``
# at a fraction of the cost (the collector checksums every record it appends)
from isal.isal_zlib import crc32

SEGMENT_MAGIC = b"ADTRKSEG"
FORMAT_VERSION = 1
SEGMENT_HEADER = SEGMENT_MAGIC + struct.pack("<II", FORMAT_VERSION, 0)
HEADER_SIZE = len(SEGMENT_HEADER)

FRAME_MAGIC = b"ADTF"
_FRAME_HEAD = struct.Struct("<4sIII")
FRAME_HEAD_SIZE = _FRAME_HEAD.size
_PREFIX = struct.Struct("<4sII")  # the part of the frame head the CRC covers
_U32 = struct.Struct("<I")

# A frame's payload length is a u32; refuse anything near that so a corrupted length field is
# recognised as such instead of making a reader wait for 4 GiB that will never come.
MAX_FRAME_PAYLOAD = 1 << 30


class FrameTooLarge(ValueError):
    """An ``append`` whose records do not fit in one frame."""


def encode_frame(records: Sequence[bytes]) -> bytes:
    """The frame holding ``records`` (at least one, none empty), ready for one ``os.write``."""
    if not all(records):
        raise ValueError("an event log record cannot be empty")
    # length, record, length, record...: interleaved by slice assignment, without a Python-level
    # loop per record (the collector encodes every event it answers)
    parts: list[bytes] = [b""] * (2 * len(records))
    parts[::2] = map(_U32.pack, map(len, records))
    parts[1::2] = records
    payload = b"".join(parts)
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise FrameTooLarge(f"{len(payload)} bytes in one append (max {MAX_FRAME_PAYLOAD})")
    prefix = _PREFIX.pack(FRAME_MAGIC, len(payload), len(records))
    crc = crc32(payload, crc32(prefix))
    return b"".join((prefix, _U32.pack(crc), payload))


def header_is_valid(data: bytes) -> bool:
    return len(data) >= HEADER_SIZE and data[:HEADER_SIZE] == SEGMENT_HEADER


class ScanStop(Enum):
    END = "end"  # every byte up to the end of the scanned range was a valid frame
    LIMIT = "limit"  # stopped because enough records were collected
    INCOMPLETE = "incomplete"  # the data ends inside a frame (being written, or torn)
    CORRUPT = "corrupt"  # bad magic, length or CRC


@dataclass
class Scan:
    """The result of decoding frames from ``start`` on: the records and where to resume."""

    start: int
    next_offset: int
    stop: ScanStop
    records: list[bytes] = field(default_factory=list)
    frames: int = 0


def decode_payload(payload: memoryview, count: int) -> list[bytes] | None:
    """The records of a frame payload, or ``None`` if its inner lengths do not add up."""
    data = bytes(payload)  # (slices of bytes are the records: no view object per record)
    pos = 0
    records: list[bytes] = []
    append = records.append
    unpack = _U32.unpack_from
    try:
        for _ in range(count):
            (length,) = unpack(data, pos)
            pos += 4 + length
            append(data[pos - length : pos])
    except struct.error:  # a length past the end
        return None
    # An overlong record only shows at the end (slices stop at the data's end, positions do not).
    return records if pos == len(data) and all(records) else None


def scan_frames(data: bytes, base_offset: int, max_records: int, already: int = 0) -> Scan:
    """Decode the frames in ``data`` (which starts at file offset ``base_offset``).

    Stops at the end of ``data``, at a torn or corrupt frame, or before the frame that would
    take the total (``already`` plus the records found here) past ``max_records``. A frame is
    never split (an ``append`` is delivered whole), so when the total is still zero one frame is
    taken even if it alone holds more than ``max_records`` records.
    """
    view = memoryview(data)
    pos = 0
    end = len(data)
    scan = Scan(start=base_offset, next_offset=base_offset, stop=ScanStop.END)
    while pos < end:
        if pos + FRAME_HEAD_SIZE > end:
            scan.stop = ScanStop.INCOMPLETE
            break
        magic, length, count, crc = _FRAME_HEAD.unpack_from(view, pos)
        if magic != FRAME_MAGIC or count == 0 or length > MAX_FRAME_PAYLOAD or length < 5 * count:
            scan.stop = ScanStop.CORRUPT
            break
        total = already + len(scan.records)
        if total and total + count > max_records:
            scan.stop = ScanStop.LIMIT
            break
        frame_end = pos + FRAME_HEAD_SIZE + length
        if frame_end > end:
            scan.stop = ScanStop.INCOMPLETE
            break
        payload = view[pos + FRAME_HEAD_SIZE : frame_end]
        if crc32(payload, crc32(view[pos : pos + 12])) != crc:
            scan.stop = ScanStop.CORRUPT
            break
        records = decode_payload(payload, count)
        if records is None:
            scan.stop = ScanStop.CORRUPT
            break
        scan.records.extend(records)
        scan.frames += 1
        pos = frame_end
        scan.next_offset = base_offset + pos
    return scan


def frame_length_at(data: bytes) -> int | None:
    """Total length of the frame whose head starts ``data`` (``None`` if no plausible head)."""
    if len(data) < FRAME_HEAD_SIZE:
        return None
    magic, length, count, _crc = _FRAME_HEAD.unpack_from(data, 0)
    if magic != FRAME_MAGIC or count == 0 or length > MAX_FRAME_PAYLOAD:
        return None
    return FRAME_HEAD_SIZE + int(length)
