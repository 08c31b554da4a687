"""The NATS JetStream event log against the local NATS server (127.0.0.1:4222).

Every test uses its own stream (``nats_stream_name``) and its own subject, so tests can run
next to each other and next to a developer's own adtrack on the same server.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
import uvloop
from nats.js import api
from sqlalchemy import func, select

from adtrack.adapters.eventlog import factory
from adtrack.adapters.eventlog.nats import (
    NatsEventLogReader,
    NatsEventLogWriter,
    StreamSpec,
    event_id_of,
    subject_matches,
)
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from adtrack.aggregator.runner import Aggregator
from adtrack.config import Settings
from adtrack.services.event_log import Batch, EventLogUnavailable
from tests.collector_support import event_record
from tests.scaleout_support import PrivateNats
from tests.support.nats_reading import records_of, stream_info
from tests.support.net import free_port

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return uvloop.run(coro)


def spec_for(url: str, stream: str, **overrides: Any) -> StreamSpec:
    return StreamSpec(
        servers=(url,), stream=stream, subject=f"adtrack_test.{stream.lower()}", **overrides
    )


def event(i: int, *, tracker: int = 1, ts: int = 1_767_225_600_000_000) -> bytes:
    """An event record as the collector writes it (event_id first)."""
    return event_record(
        f"test-{i}",
        tracker=tracker,
        ts=ts,
        cachebuster=str(i),
        cost=1000,
        revenue=2000,
        ip="192.0.2.0",
        user_agent="test",
    )


async def read_all(reader: NatsEventLogReader, *, ack: bool = True) -> list[Batch]:
    batches: list[Batch] = []
    while True:
        batch = await reader.read(1000)
        if not batch.records:
            return batches
        batches.append(batch)
        if ack:
            await reader.ack(batch)


# ---- pure helpers -------------------------------------------------------------------------------


def test_event_id_is_read_from_the_start_of_the_record() -> None:
    assert event_id_of(event(7)) == "test-7"
    assert event_id_of(b'{"ts":1,"event_id":"x"}') is None  # not first: no dedupe header
    assert event_id_of(b'{"event_id":""}') is None
    assert event_id_of(b"not json") is None


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("adtrack.events", "adtrack.events", True),
        ("adtrack.*", "adtrack.events", True),
        ("adtrack.>", "adtrack.events.eu", True),
        ("adtrack.>", "adtrack", False),
        ("adtrack.*", "adtrack.events.eu", False),
        ("other.events", "adtrack.events", False),
    ],
)
def test_subject_matching(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


def test_factory_opens_jetstream_parts_from_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "ADTRACK_DATA_DIR": str(tmp_path),
            "ADTRACK_EVENT_LOG": "nats://a:4222, nats://b:4222",
            "ADTRACK_NATS_STREAM": "EVENTS_EU",
            "ADTRACK_NATS_SUBJECT": "adtrack.eu",
            "ADTRACK_NATS_REPLICAS": "3",
            "ADTRACK_NATS_ACK_WAIT_SECONDS": "12",
            "ADTRACK_RAW_EVENT_RETENTION_DAYS": "2",
        }
    )
    writer = factory.open_writer(settings, writer_id="w1")  # connects lazily: no server needed
    reader = factory.open_reader(settings, consumer="agg")
    assert isinstance(writer, NatsEventLogWriter)
    assert isinstance(reader, NatsEventLogReader)
    assert reader.consumer == "agg"
    assert writer.spec == StreamSpec(
        servers=("nats://a:4222", "nats://b:4222"),
        stream="EVENTS_EU",
        subject="adtrack.eu",
        replicas=3,
        max_age_seconds=2 * 86400.0,  # never older than the raw events that dedupe replays
        ack_wait_seconds=12.0,
        max_message_bytes=1024 * 1024,
    )
    defaults = Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path)})
    assert (defaults.nats_subject, defaults.nats_replicas) == ("adtrack.events", 1)
    assert defaults.nats_max_message_bytes == 1024 * 1024
    assert StreamSpec.from_settings(defaults).max_message_bytes == 1024 * 1024


# ---- against the server -------------------------------------------------------------------------


def test_appended_events_are_read_in_order_with_positions(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> tuple[list[Batch], list[Batch]]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec, consumer="aggregator")
        try:
            for start in (0, 10, 20):
                await writer.append([event(i) for i in range(start, start + 10)])
            first = await read_all(reader)
            again = await read_all(NatsEventLogReader(spec, consumer="aggregator"))
            return first, again
        finally:
            await writer.close()
            await reader.close()

    first, again = run(scenario())
    assert records_of(first) == [event(i) for i in range(30)]
    # one message per append: the stream sequence of the last one
    assert first[-1].position == {nats_stream_name: 3}
    assert again == []  # acked: the durable consumer does not deliver them again


def test_stream_is_created_with_file_storage_the_subject_and_replicas(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name, max_age_seconds=3600.0)

    async def scenario() -> api.StreamInfo:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(1)])
        finally:
            await writer.close()
        return await stream_info(nats_url, nats_stream_name)

    info = run(scenario())
    assert info.config.storage == api.StorageType.FILE
    assert info.config.subjects == [spec.subject]
    assert info.config.num_replicas == 1
    assert info.config.duplicate_window == 120.0
    assert info.config.max_age == 3600.0
    assert info.state.messages == 1


def test_an_append_is_one_message_and_a_retried_batch_is_stored_once(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> tuple[int, int, list[Batch]]:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(1), event(2)])
            await writer.append([event(1), event(2)])  # the same batch again: a retried publish
            await writer.append([event(3)])
            info = await stream_info(nats_url, nats_stream_name)
            batches = await read_all(NatsEventLogReader(spec, consumer="aggregator"))
            return info.state.messages, writer.stats.duplicates, batches
        finally:
            await writer.close()

    messages, duplicates, batches = run(scenario())
    assert messages == 2
    assert duplicates == 1
    assert records_of(batches) == [event(1), event(2), event(3)]


def test_unacked_events_are_delivered_again_after_the_ack_wait(
    nats_url: str, nats_stream_name: str
) -> None:
    """An aggregator that dies before acking loses nothing: another one gets the events."""
    spec = spec_for(nats_url, nats_stream_name, ack_wait_seconds=1.0)

    async def scenario() -> tuple[list[bytes], list[bytes], float]:
        writer = NatsEventLogWriter(spec)
        dying = NatsEventLogReader(spec, consumer="aggregator")
        try:
            await writer.append([event(i) for i in range(5)])
            taken = records_of(await read_all(dying, ack=False))
        finally:
            await dying.close()  # gone without acking
            await writer.close()
        successor = NatsEventLogReader(spec, consumer="aggregator", fetch_wait=0.5)
        started = time.monotonic()
        redelivered: list[bytes] = []
        try:
            while len(redelivered) < 5 and time.monotonic() - started < 10:
                redelivered += records_of(await read_all(successor))
        finally:
            await successor.close()
        return taken, redelivered, time.monotonic() - started

    taken, redelivered, waited = run(scenario())
    assert taken == [event(i) for i in range(5)]
    assert sorted(redelivered) == sorted(taken)
    assert waited < 5


def test_two_readers_share_one_durable_consumer(nats_url: str, nats_stream_name: str) -> None:
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        writer = NatsEventLogWriter(spec)
        first = NatsEventLogReader(spec, consumer="aggregator")
        second = NatsEventLogReader(spec, consumer="aggregator")
        try:
            for start in range(0, 200, 10):  # 20 messages of 10 events: something to share
                await writer.append([event(i) for i in range(start, start + 10)])
            got_first: list[bytes] = []
            got_second: list[bytes] = []
            while True:
                a, b = await asyncio.gather(first.read(30), second.read(30))
                if not a.records and not b.records:
                    break
                got_first += a.records
                got_second += b.records
                await asyncio.gather(first.ack(a), second.ack(b))
            return got_first, got_second
        finally:
            for part in (writer, first, second):
                await part.close()

    got_first, got_second = run(scenario())
    assert got_first and got_second  # both took part
    assert sorted(got_first + got_second) == sorted(event(i) for i in range(200))


def test_unreachable_nats_fails_appends_quickly(nats_stream_name: str) -> None:
    spec = StreamSpec(
        servers=(f"nats://127.0.0.1:{free_port()}",), stream=nats_stream_name, subject="x.y"
    )

    async def scenario() -> tuple[float, float]:
        writer = NatsEventLogWriter(spec, connect_wait=0.5)
        try:
            started = time.monotonic()
            with pytest.raises(EventLogUnavailable, match="cannot reach NATS"):
                await writer.append([event(1)])
            first = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(EventLogUnavailable):
                await writer.append([event(2)])
            return first, time.monotonic() - started
        finally:
            await writer.close()

    first, second = run(scenario())
    assert first < 2.0  # waited for the first connection only briefly
    assert second < 0.1  # during an outage, appends fail at once


def test_a_stream_without_the_subject_is_refused(nats_url: str, nats_stream_name: str) -> None:
    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(
                name=nats_stream_name, subjects=[f"elsewhere.{nats_stream_name.lower()}"]
            )
        finally:
            await nc.close()
        writer = NatsEventLogWriter(spec_for(nats_url, nats_stream_name))
        try:
            with pytest.raises(EventLogUnavailable, match="ADTRACK_NATS_SUBJECT"):
                await writer.append([event(1)])
        finally:
            await writer.close()

    run(scenario())


def test_a_deleted_stream_fails_the_append_and_is_created_again(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> int:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(1)])
            nc = await nats.connect(nats_url)
            try:
                await nc.jetstream().delete_stream(nats_stream_name)
            finally:
                await nc.close()
            with pytest.raises(EventLogUnavailable, match="no JetStream stream"):
                await writer.append([event(2)])
            await writer.append([event(3)])
        finally:
            await writer.close()
        return (await stream_info(nats_url, nats_stream_name)).state.messages

    assert run(scenario()) == 1


def test_the_aggregator_consumes_the_stream_exactly_once(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """Rollups from JetStream; a second consumer replaying the whole stream adds nothing."""
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> None:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(i) for i in range(300)])
            await writer.append([event(i) for i in range(250, 400)])  # 50 again
        finally:
            await writer.close()
        for consumer in ("aggregator", "replay"):
            reader = NatsEventLogReader(spec, consumer=consumer)
            aggregator = Aggregator(reader, engine)
            try:
                while await aggregator.run_once(max_records=120):
                    pass
            finally:
                await reader.close()

    try:
        run(scenario())
        with engine.connect() as conn:
            imps = conn.execute(select(func.sum(t.rollup_hourly.c.imps))).scalar()
            raw = conn.execute(select(func.count()).select_from(t.events)).scalar()
            checkpoints = dict(
                conn.execute(
                    select(t.eventlog_checkpoints.c.consumer, t.eventlog_checkpoints.c.position)
                ).all()
            )
    finally:
        engine.dispose()
    assert imps == raw == 400
    # the stream sequence of the last message: one per append
    assert checkpoints == {"aggregator": 2, "replay": 2}


def test_a_deleted_consumer_is_created_again(nats_url: str, nats_stream_name: str) -> None:
    """An operator deleting the consumer does not stop aggregation: the reader sets it up again
    (from the stream's start; the aggregator recognises the events it already stored)."""
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> list[bytes]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec, consumer="aggregator", fetch_wait=0.2)
        try:
            await writer.append([event(i) for i in range(5)])
            assert len(records_of(await read_all(reader))) == 5
            nc = await nats.connect(nats_url)
            try:
                await nc.jetstream().delete_consumer(nats_stream_name, "aggregator")
            finally:
                await nc.close()
            await writer.append([event(i) for i in range(5, 8)])
            seen: list[bytes] = []
            deadline = time.monotonic() + 10
            while event(7) not in seen and time.monotonic() < deadline:
                seen += records_of(await read_all(reader))
            return seen
        finally:
            await writer.close()
            await reader.close()

    seen = run(scenario())
    assert {event(i) for i in range(5, 8)} <= set(seen)


def test_readiness_follows_the_connection_and_recovers_without_appends(
    nats_stream_name: str,
) -> None:
    async def until(check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "condition not reached"
            await asyncio.sleep(0.05)

    with PrivateNats() as server:
        spec = spec_for(server.url, nats_stream_name)

        async def scenario() -> None:
            writer = NatsEventLogWriter(spec, connect_wait=0.5, ack_timeout=1.0)
            try:
                # not connected yet: asking starts connecting, no append needed
                assert writer.readiness() is not None
                await until(lambda: writer.readiness() is None, 10)
                await writer.append([event(1)])
                server.stop(signal.SIGKILL)
                await until(lambda: writer.readiness() is not None, 10)
                assert "NATS" in (writer.readiness() or "")
                with pytest.raises(EventLogUnavailable):
                    await writer.append([event(2)])
                server.start()
                await until(lambda: writer.readiness() is None, 15)
                await writer.append([event(3)])
            finally:
                await writer.close()

        run(scenario())
