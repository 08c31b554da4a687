"""The bodies of the JetStream event log's messages (no I/O here, just bytes).

Format 1 (adtrack with batched publishing): one message carries the records of one collector
append, or a part of it when they do not fit in one message. Its body is one frame of the local
log's segment format (``segment_format.encode_frame``)::

    0   4  b"ADTF"
    4   4  payload length in bytes (u32, little-endian)
    8   4  record count (u32, >= 1)
    12  4  CRC32 of bytes 0..11 followed by the payload
    16  n  payload: for each record, its length (u32) then its bytes

Format 0 (adtrack before batching): the body is one event record, a JSON object (``{...}``).
Readers accept both, so a stream written by an earlier version is read as it is.

A body that starts with ``ADT`` but is not a format-1 frame comes from a later version of adtrack
(a new magic is a new format): readers leave it unacked for an aggregator that knows it (upgrade
aggregators before collectors). Anything else is handed on as one record; the aggregator skips
and logs a record that is not an event.

The ``Nats-Msg-Id`` of a message is derived from its content — the first record's event id, the
record count and the frame's CRC32 — so publishing the same batch again is recognised by
JetStream within the stream's duplicate window, while two different batches never share an id
(event ids are unique).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

# zlib's CRC-32 with vector instructions (same values as ``zlib.crc32``), as in segment_format
from isal.isal_zlib import crc32

from adtrack.adapters.eventlog.segment_format import (
    FRAME_HEAD_SIZE,
    FRAME_MAGIC,
    decode_payload,
    encode_frame,
)
from adtrack.domain.events import RECORD_FORMAT

__all__ = [
    "BATCH_OVERHEAD",
    "RECORD_OVERHEAD",
    "FutureFormat",
    "Message",
    "MalformedMessage",
    "decode_message",
    "encode_messages",
    "event_id_of",
]

RECORD_OVERHEAD = 4  # the length in front of each record
BATCH_OVERHEAD = FRAME_HEAD_SIZE
_ADTRACK_MAGIC_PREFIX = b"ADT"
_FRAME_HEAD = struct.Struct("<4sIII")
# what a collector's record starts with, up to its event id: in each record format, and before
# record format 1
_EVENT_ID_PREFIXES = (
    *(b'[%d,"' % number for number in range(RECORD_FORMAT, 0, -1)),
    b'{"event_id":"',
)


class FutureFormat(ValueError):
    """A message in a format of a later adtrack version: not readable here, not to be dropped."""


class MalformedMessage(ValueError):
    """A format-1 message whose frame does not add up (length, count or CRC)."""


@dataclass(frozen=True)
class Message:
    """One message to publish: its body and its ``Nats-Msg-Id``."""

    body: bytes
    msg_id: str
    records: int


def event_id_of(record: bytes) -> str | None:
    """The ``event_id`` of an event record (the collector writes it first), or None."""
    for prefix in _EVENT_ID_PREFIXES:
        if record.startswith(prefix):
            end = record.find(b'"', len(prefix))
            if end > len(prefix):
                raw = record[len(prefix) : end]
                if b"\\" not in raw:
                    return raw.decode("ascii", "replace")
            return None
    return None


def _message(records: Sequence[bytes]) -> Message:
    body = encode_frame(records)
    first = event_id_of(records[0])
    if first is None:  # not written by a collector: the content's digest identifies it
        msg_id = "b-" + hashlib.blake2b(body, digest_size=16).hexdigest()
    else:
        msg_id = f"{first}+{len(records)}-{body[12:16].hex()}"
    return Message(body, msg_id, len(records))


def encode_messages(records: Sequence[bytes], max_bytes: int) -> list[Message]:
    """The records (at least one, none empty) as format-1 messages of at most ``max_bytes``
    each, in order; a record too large to share a message with others travels alone (and is
    refused by the server if it exceeds its ``max_payload``)."""
    sizes = [RECORD_OVERHEAD + len(record) for record in records]
    if BATCH_OVERHEAD + sum(sizes) <= max_bytes:  # the usual case: one message
        return [_message(records)]
    messages: list[Message] = []
    start = 0
    used = BATCH_OVERHEAD
    for i, size in enumerate(sizes):
        if used + size > max_bytes and i > start:
            messages.append(_message(records[start:i]))
            start, used = i, BATCH_OVERHEAD
        used += size
    messages.append(_message(records[start:]))
    return messages


def decode_message(body: bytes) -> list[bytes]:
    """The records of a message body (either format).

    Raises :class:`FutureFormat` for a later version's format and :class:`MalformedMessage` for
    a format-1 frame that does not check out.
    """
    if body[:4] == FRAME_MAGIC:
        if len(body) < FRAME_HEAD_SIZE:
            raise MalformedMessage(f"a batch message of {len(body)} bytes")
        _magic, length, count, crc = _FRAME_HEAD.unpack_from(body, 0)
        if count == 0 or length != len(body) - FRAME_HEAD_SIZE:
            raise MalformedMessage(f"batch length {length} or count {count} do not match")
        view = memoryview(body)
        if crc32(view[FRAME_HEAD_SIZE:], crc32(view[:12])) != crc:
            raise MalformedMessage("batch CRC mismatch")
        records = decode_payload(view[FRAME_HEAD_SIZE:], count)
        if records is None:
            raise MalformedMessage("batch record lengths do not add up")
        return records
    if body[:3] == _ADTRACK_MAGIC_PREFIX:
        raise FutureFormat(f"message format {body[:4]!r} is not known to this version")
    return [body]  # format 0: one event record (or something else the aggregator will skip)
