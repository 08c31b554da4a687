"""What the JetStream event-log tests read back: the records of batches, a stream's state."""

from __future__ import annotations

import nats
from nats.js import api

from adtrack.services.ports import Batch

__all__ = ["records_of", "stream_info"]


def records_of(batches: list[Batch]) -> list[bytes]:
    return [record for batch in batches for record in batch.records]


async def stream_info(url: str, stream: str) -> api.StreamInfo:
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
