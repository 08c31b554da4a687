"""The NATS JetStream event log against the local NATS server (127.0.0.1:4222).

Every test uses its own stream (``nats_stream_name``) and its own subject, so tests can run
next to each other and next to a developer's own adtrack on the same server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
import uvloop
from nats.js import api
from sqlalchemy import select

from adtrack.adapters.eventlog import factory
from adtrack.adapters.eventlog.nats_format import event_id_of
from adtrack.adapters.eventlog.nats_reader import NatsEventLogReader, partition_source
from adtrack.adapters.eventlog.nats_stream import StreamSpec, subject_matches
from adtrack.adapters.eventlog.nats_writer import NatsEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.aggregator_members import SqlAggregatorMembers
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.runner import Aggregator
from adtrack.config import Settings
from adtrack.services.ports import Batch, EventLogUnavailable
from tests.support.collector import event_record
from tests.support.nats_reading import records_of, stream_info
from tests.support.net import free_port
from tests.support.rollup_counts import counted_events
from tests.support.scaleout import PrivateNats, wait_until

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


async def read_all(reader: NatsEventLogReader, max_records: int = 1000) -> list[Batch]:
    """Read until a read finds nothing (the reader reads on without acks)."""
    batches: list[Batch] = []
    while True:
        batch = await reader.read(max_records)
        if not batch.records:
            return batches
        batches.append(batch)


def by_partition(batches: list[Batch]) -> dict[str, list[tuple[int, int]]]:
    """source -> the (start, end) of every batch that read it, in order."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for batch in batches:
        assert isinstance(batch.position, dict)
        assert set(batch.starts) == set(batch.position)
        for source, end in batch.position.items():
            spans.setdefault(source, []).append((batch.starts[source], end))
    return spans


def assert_contiguous(batches: list[Batch], first: dict[str, int] | None = None) -> None:
    """Each partition's batches start where its previous one ended (or at ``first``, 0)."""
    for source, spans in by_partition(batches).items():
        previous = (first or {}).get(source, 0)
        for start, end in spans:
            assert start == previous, (source, spans)
            assert end > start
            previous = end


# ---- pure helpers -------------------------------------------------------------------------------


def test_event_id_is_read_from_the_start_of_the_record() -> None:
    assert event_id_of(event(7)) == "test-7"
    assert event_id_of(b'[2,"y",1]') == "y"
    assert event_id_of(b'[1,"x",1]') == "x"  # as records of format 1
    assert event_id_of(b'{"event_id":"k","ts":1}') == "k"  # as records before format 1
    assert event_id_of(b'{"ts":1,"event_id":"x"}') is None  # not first: no dedupe header
    assert event_id_of(b'{"event_id":""}') is None
    assert event_id_of(b'[1,""]') is None
    assert event_id_of(b'[1,7,"x"]') is None
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
            "ADTRACK_NATS_PARTITIONS": "4",
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
        max_age_seconds=2 * 86400.0,  # never older than the raw events
        max_message_bytes=1024 * 1024,
        partitions=4,
    )
    assert writer.spec.subjects == ["adtrack.eu"] + [f"adtrack.eu.{n}" for n in range(4)]
    defaults = Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path)})
    assert (defaults.nats_subject, defaults.nats_replicas) == ("adtrack.events", 1)
    assert defaults.nats_max_message_bytes == 1024 * 1024
    assert StreamSpec.from_settings(defaults).max_message_bytes == 1024 * 1024
    assert StreamSpec.from_settings(defaults).partitions == 8
    assert (defaults.aggregator_heartbeat_seconds, defaults.aggregator_member_ttl_seconds) == (
        2.0,
        10.0,
    )


# ---- against the server -------------------------------------------------------------------------


def test_appends_go_round_robin_to_the_partitions_and_are_read_with_positions(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name, partitions=4)

    async def scenario() -> tuple[list[Batch], list[Batch], list[Batch], dict[str, int]]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec)
        try:
            for start in range(0, 80, 10):  # 8 appends: 2 per partition
                await writer.append([event(i) for i in range(start, start + 10)])
            first = await read_all(reader)
            positions = reader.positions
            again = await read_all(reader)  # read on: nothing new
            other = NatsEventLogReader(spec)  # positions are not JetStream's: all of it again
            try:
                everything = await read_all(other)
            finally:
                await other.close()
            return first, again, everything, positions
        finally:
            await writer.close()
            await reader.close()

    first, again, everything, positions = run(scenario())
    sources = [partition_source(nats_stream_name, s) for s in spec.partition_subjects]
    assert sorted(records_of(first)) == sorted(event(i) for i in range(80))
    assert again == []
    assert sorted(records_of(everything)) == sorted(records_of(first))
    # one message per append, sequences 1..8, two in each partition, in order within it
    assert set(positions) == set(sources)
    assert sorted(positions.values()) == [5, 6, 7, 8]
    assert_contiguous(first)
    for batch in first:  # a partition's records keep the order they were appended in
        ids = [int(r.split(b'"test-')[1].split(b'"')[0]) for r in batch.records]
        assert ids == sorted(ids) or len(batch.position) > 1  # type: ignore[arg-type]


def test_stream_is_created_with_the_partition_subjects_file_storage_and_limits(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name, max_age_seconds=3600.0, partitions=3)

    async def scenario() -> api.StreamInfo:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(1)])
        finally:
            await writer.close()
        return await stream_info(nats_url, nats_stream_name)

    info = run(scenario())
    assert info.config.storage == api.StorageType.FILE
    assert info.config.subjects == [spec.subject] + [f"{spec.subject}.{n}" for n in range(3)]
    assert info.config.retention == api.RetentionPolicy.LIMITS
    assert info.config.num_replicas == 1
    assert info.config.duplicate_window == 120.0
    assert info.config.max_age == 3600.0
    assert info.state.messages == 1


def test_a_stream_of_the_previous_version_gets_the_partitions_and_its_messages_are_read(
    nats_url: str, nats_stream_name: str
) -> None:
    """A stream with only the bare subject (as earlier versions created it), holding messages:
    the partition subjects are added, and the old messages are read as one more partition."""
    spec = spec_for(nats_url, nats_stream_name, partitions=2)

    async def scenario() -> tuple[list[str], list[Batch]]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await js.add_stream(name=nats_stream_name, subjects=[spec.subject])
            for i in range(3):  # as the previous versions published them
                await js.publish(spec.subject, event(i), headers={"Nats-Msg-Id": f"test-{i}"})
        finally:
            await nc.close()
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec)
        try:
            await writer.append([event(3), event(4)])
            await writer.append([event(5)])
            info = await stream_info(nats_url, nats_stream_name)
            return list(info.config.subjects or []), await read_all(reader)
        finally:
            await writer.close()
            await reader.close()

    subjects, batches = run(scenario())
    assert subjects == [spec.subject, f"{spec.subject}.0", f"{spec.subject}.1"]
    assert sorted(records_of(batches)) == sorted(event(i) for i in range(6))
    legacy = partition_source(nats_stream_name, spec.subject)
    assert by_partition(batches)[legacy] == [(0, 3)]  # sequences 1..3, in one batch


def test_an_append_is_one_message_and_a_retried_batch_is_stored_once(
    nats_url: str, nats_stream_name: str
) -> None:
    """The retry goes to another partition (round robin): JetStream's duplicate detection is
    stream-wide, so it is still stored once."""
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> tuple[int, int, list[Batch]]:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(1), event(2)])
            await writer.append([event(1), event(2)])  # the same batch again: a retried publish
            await writer.append([event(3)])
            info = await stream_info(nats_url, nats_stream_name)
            batches = await read_all(NatsEventLogReader(spec))
            return info.state.messages, writer.stats.duplicates, batches
        finally:
            await writer.close()

    messages, duplicates, batches = run(scenario())
    assert messages == 2
    assert duplicates == 1
    assert sorted(records_of(batches)) == [event(1), event(2), event(3)]


def test_positions_and_starts_are_contiguous_per_partition_across_small_batches(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name, partitions=3)

    async def scenario() -> list[Batch]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec)
        try:
            for start in range(0, 90, 3):  # 30 messages of 3 events, 10 per partition
                await writer.append([event(i) for i in range(start, start + 3)])
            return await read_all(reader, max_records=7)
        finally:
            await writer.close()
            await reader.close()

    batches = run(scenario())
    assert sorted(records_of(batches)) == sorted(event(i) for i in range(90))
    assert len(batches) >= 5
    assert_contiguous(batches)
    ends = {source: spans[-1][1] for source, spans in by_partition(batches).items()}
    assert sorted(ends.values()) == [28, 29, 30]


def test_a_batch_never_committed_is_read_again_after_restore(
    nats_url: str, nats_stream_name: str
) -> None:
    """The reader reads on without waiting for commits; ``restore`` with the committed positions
    rewinds it to exactly what was not committed (here: the second of two batches)."""
    spec = spec_for(nats_url, nats_stream_name, partitions=2)

    async def scenario() -> tuple[Batch, Batch, list[Batch], list[Batch]]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec)
        try:
            for start in range(0, 40, 5):  # 8 messages of 5 events
                await writer.append([event(i) for i in range(start, start + 5)])
            committed = await reader.read(10)  # one message per partition
            lost = await reader.read(10)  # handed out, never committed
            assert isinstance(committed.position, dict)
            reader.restore(committed.position)
            after_restore = await read_all(reader)
            reader.restore({})  # nothing committed at all: from the stream's start
            from_start = await read_all(reader)
            return committed, lost, after_restore, from_start
        finally:
            await writer.close()
            await reader.close()

    committed, lost, after_restore, from_start = run(scenario())
    assert lost.starts == committed.position
    assert set(lost.records) <= set(records_of(after_restore))
    assert sorted(committed.records + records_of(after_restore)) == sorted(
        event(i) for i in range(40)
    )
    assert_contiguous(after_restore, first=committed.position)  # type: ignore[arg-type]
    assert sorted(records_of(from_start)) == sorted(event(i) for i in range(40))
    assert_contiguous(from_start)


def test_a_message_of_a_later_format_stops_its_partition_only(
    nats_url: str, nats_stream_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not skipped (its events would be lost): the partition stops before it, logged; the other
    partitions are read on, and ``restore`` does not skip it either."""
    spec = spec_for(nats_url, nats_stream_name, partitions=2)
    blocked = f"{spec.subject}.1"

    async def scenario() -> tuple[list[Batch], dict[str, str], list[Batch], dict[str, int]]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec)
        try:
            await writer.append([event(0)])  # creates the stream
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()
                await js.publish(f"{spec.subject}.0", event(1))
                await js.publish(blocked, event(2))
                await js.publish(blocked, b"ADT9 a format from the future")
                await js.publish(blocked, event(3))
                await js.publish(f"{spec.subject}.0", event(4))
            finally:
                await nc.close()
            batches = await read_all(reader)
            stopped = reader.stopped()
            reader.restore({})
            again = await read_all(reader)
            return batches, stopped, again, reader.positions
        finally:
            await writer.close()
            await reader.close()

    caplog.set_level(logging.ERROR, logger="adtrack.adapters.eventlog.nats_reader")
    batches, stopped, again, positions = run(scenario())
    got = records_of(batches)
    assert sorted(got) == sorted([event(0), event(1), event(2), event(4)])
    assert event(3) not in records_of(again)
    source = partition_source(nats_stream_name, blocked)
    assert list(stopped) == [source]
    assert positions[source] == 3  # event 2's message; the later-format one is sequence 4
    assert any("stopped reading" in r.getMessage() for r in caplog.records)


def test_two_readers_split_the_partitions_and_each_event_is_handed_out_once(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """Two aggregators' readers on one membership table read disjoint partitions: together
    they read every event once (the commit's compare-and-set is not even needed here)."""
    spec = spec_for(nats_url, nats_stream_name)
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    members = SqlAggregatorMembers(engine, group=f"nats:{nats_stream_name}", ttl_seconds=10.0)

    async def scenario() -> tuple[list[bytes], list[bytes], list[str], list[str]]:
        writer = NatsEventLogWriter(spec)
        first = NatsEventLogReader(spec, membership=members, member="a", heartbeat_seconds=0.2)
        second = NatsEventLogReader(spec, membership=members, member="b", heartbeat_seconds=0.2)
        try:
            await first.read(1)  # both have said they are alive before the events come
            await second.read(1)
            await asyncio.sleep(0.3)
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
            return got_first, got_second, first.reading, second.reading
        finally:
            for part in (writer, first, second):
                await part.close()

    try:
        got_first, got_second, reading_first, reading_second = run(scenario())
    finally:
        engine.dispose()
    assert got_first and got_second  # both took part
    assert sorted(got_first + got_second) == sorted(event(i) for i in range(200))
    assert not set(reading_first) & set(reading_second)
    assert len(reading_first) + len(reading_second) == 9  # 8 partitions and the bare subject


def test_partitions_are_split_between_members_and_move_when_one_stops_heartbeating(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """2 members, then 3, then one of them silent past the TTL: its partitions go to the
    others, which read them from the committed positions (nothing is read twice)."""
    spec = spec_for(nats_url, nats_stream_name, partitions=6)
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    members = SqlAggregatorMembers(engine, group=f"nats:{nats_stream_name}", ttl_seconds=1.0)
    committed: dict[str, int] = {}  # what the aggregators committed (the SQL checkpoints)

    def reader(member: str) -> NatsEventLogReader:
        return NatsEventLogReader(
            spec,
            membership=members,
            member=member,
            committed_positions=lambda: dict(committed),
            heartbeat_seconds=0.1,
            member_ttl_seconds=1.0,
            fetch_wait=0.1,
        )

    async def consume(readers: list[NatsEventLogReader]) -> list[bytes]:
        """Read (and commit) until every reader found nothing."""
        got: list[bytes] = []
        while True:
            batches = await asyncio.gather(*(r.read(1000) for r in readers))
            for batch in batches:
                if batch.records:
                    assert isinstance(batch.position, dict)
                    assert all(committed.get(s, 0) == n for s, n in batch.starts.items())
                    committed.update(batch.position)
                    got += batch.records
            if not any(b.records for b in batches):
                return got

    async def settle(readers: list[NatsEventLogReader]) -> None:
        for _ in range(3):  # heartbeats of all, then each sees all
            await asyncio.gather(*(r.read(1) for r in readers))
            await asyncio.sleep(0.15)
        for r in readers:  # what those reads handed out was not committed
            r.restore(committed)

    async def scenario() -> dict[str, list[list[str]]]:
        writer = NatsEventLogWriter(spec)
        a, b, c = reader("a"), reader("b"), reader("c")
        shares: dict[str, list[list[str]]] = {}
        try:
            await settle([a, b])
            shares["two"] = [a.reading, b.reading]
            await settle([a, b, c])
            shares["three"] = [a.reading, b.reading, c.reading]
            for start in range(0, 120, 10):
                await writer.append([event(i) for i in range(start, start + 10)])
            got = await consume([a, b, c])
            assert sorted(got) == sorted(event(i) for i in range(120))
            for start in range(120, 240, 10):
                await writer.append([event(i) for i in range(start, start + 10)])
            await asyncio.sleep(1.2)  # c says nothing past the TTL
            await settle([a, b])
            shares["after"] = [a.reading, b.reading, c.reading]
            got = await consume([a, b])
            assert sorted(got) == sorted(event(i) for i in range(120, 240))
        finally:
            for part in (writer, a, b, c):
                await part.close()
        return shares

    try:
        shares = run(scenario())
    finally:
        engine.dispose()
    everything = sorted(NatsEventLogReader(spec).partitions)
    for name, expected_sizes in (("two", [4, 3]), ("three", [3, 2, 2])):
        split = shares[name]
        assert sorted(p for share in split for p in share) == everything, name
        assert [len(share) for share in split] == expected_sizes, name
    after = shares["after"]
    assert sorted(after[0] + after[1]) == everything
    assert [len(share) for share in after[:2]] == [4, 3]


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


def test_a_work_queue_stream_is_refused(nats_url: str, nats_stream_name: str) -> None:
    """Messages of a work-queue stream go once taken: reading by position needs limits."""
    spec = spec_for(nats_url, nats_stream_name)

    async def scenario() -> str:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(
                name=nats_stream_name,
                subjects=spec.subjects,
                retention=api.RetentionPolicy.WORK_QUEUE,
            )
        finally:
            await nc.close()
        writer = NatsEventLogWriter(spec)
        try:
            with pytest.raises(EventLogUnavailable) as refused:
                await writer.append([event(1)])
            return str(refused.value)
        finally:
            await writer.close()

    reason = run(scenario())
    assert "workqueue retention" in reason and "limits retention" in reason
    assert "ADTRACK_NATS_STREAM" in reason


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
    """Rollups from JetStream with the positions committed per partition; an aggregator that
    replays the whole stream (reset to the start) adds nothing: its batches' starts are not
    the committed positions. Needs the sink that commits positions by compare-and-set."""
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    spec = spec_for(nats_url, nats_stream_name, partitions=3)

    async def scenario() -> dict[str, int]:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(i) for i in range(300)])
            await writer.append([event(i) for i in range(300)])  # a retry: stored once
            await writer.append([event(i) for i in range(300, 400)])
        finally:
            await writer.close()
        reader = NatsEventLogReader(spec)
        try:
            aggregator = Aggregator(reader, SqlRollupSink(engine), archive=None)
            while await aggregator.run_once(max_records=120):
                pass
            positions = reader.positions
        finally:
            await reader.close()
        replay = NatsEventLogReader(spec)
        try:
            aggregator = Aggregator(replay, SqlRollupSink(engine), archive=None)
            await aggregator.reset()  # from the stream's start, whatever is committed
            for _ in range(10):
                await aggregator.run_once(max_records=120)
        finally:
            await replay.close()
        return positions

    try:
        positions = run(scenario())
        with engine.connect() as conn:
            checkpoints = dict(
                conn.execute(
                    select(t.eventlog_checkpoints.c.source, t.eventlog_checkpoints.c.position)
                ).all()
            )
        counted = counted_events(engine)
    finally:
        engine.dispose()
    assert counted == 400
    # one message per append (round robin), the retry dropped: sequences 1 and 2, in two
    # of the three partitions
    assert checkpoints == positions
    assert sorted(positions.values()) == [1, 2]


def test_deleted_consumers_are_created_again_from_the_position(
    nats_url: str, nats_stream_name: str
) -> None:
    """An operator deleting the reader's consumers does not stop it: they are made again from
    the reader's positions, so nothing is read twice or skipped."""
    spec = spec_for(nats_url, nats_stream_name, partitions=2)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        writer = NatsEventLogWriter(spec)
        reader = NatsEventLogReader(spec, fetch_wait=0.2)
        try:
            await writer.append([event(i) for i in range(5)])
            first = records_of(await read_all(reader))
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()
                for consumer in await js.consumers_info(nats_stream_name):
                    await js.delete_consumer(nats_stream_name, consumer.name)
            finally:
                await nc.close()
            await writer.append([event(i) for i in range(5, 8)])
            await writer.append([event(i) for i in range(8, 10)])
            seen: list[bytes] = []
            deadline = time.monotonic() + 10
            while len(seen) < 5 and time.monotonic() < deadline:
                seen += records_of(await read_all(reader))
            return first, seen
        finally:
            await writer.close()
            await reader.close()

    first, seen = run(scenario())
    assert sorted(first) == sorted(event(i) for i in range(5))
    assert sorted(seen) == sorted(event(i) for i in range(5, 10))


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


def test_an_append_whose_acks_do_not_come_fails_after_the_ack_timeout(
    nats_stream_name: str,
) -> None:
    """A server that keeps the connection but stops answering (here: stopped with SIGSTOP): the
    append is refused (the collector answers 503) once ``ack_timeout`` has passed, not later and
    not never; appends work again once the server does."""
    with PrivateNats() as server:
        spec = spec_for(server.url, nats_stream_name)

        async def scenario() -> tuple[str, float]:
            writer = NatsEventLogWriter(spec, connect_wait=2.0, ack_timeout=0.5)
            try:
                await writer.append([event(1)])
                assert server.process is not None
                server.process.send_signal(signal.SIGSTOP)
                # (it takes effect a moment later: a server still running could ack the append)
                pid = server.process.pid
                assert wait_until(lambda: _stopped(pid), 5, interval=0.001), "not stopped"
                # timed on the loop's clock, which the writer's deadlines are on (uvloop's
                # counts whole milliseconds: a wall-clock wait came out 3 us short once)
                loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    with pytest.raises(EventLogUnavailable) as refused:
                        await writer.append([event(2), event(3)])
                    waited = loop.time() - started
                finally:
                    server.process.send_signal(signal.SIGCONT)
                await writer.append([event(4)])
                return str(refused.value), waited
            finally:
                await writer.close()

        message, waited = run(scenario())
    assert "acknowledged 0 of 1 messages (2 events) within 0.5s" in message
    # the deadline is looked at ten times per ack timeout: late by at most 0.05 s (plus slack)
    assert 0.5 <= waited < 1.0


def _stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    states = {(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks}
    return states <= {"T", "t"}


def test_partitions_left_from_a_larger_partition_count_are_still_read(
    nats_url: str, nats_stream_name: str
) -> None:
    """ADTRACK_NATS_PARTITIONS lowered from 4 to 2: the stream keeps partitions 2 and 3 and the
    reader reads them too (their messages would be stranded otherwise)."""
    wide = spec_for(nats_url, nats_stream_name, partitions=4)
    narrow = spec_for(nats_url, nats_stream_name, partitions=2)

    async def scenario() -> tuple[list[Batch], list[str]]:
        writer = NatsEventLogWriter(wide)
        try:
            for i in range(8):
                await writer.append([event(i)])
        finally:
            await writer.close()
        reader = NatsEventLogReader(narrow)
        try:
            return await read_all(reader), reader.partitions
        finally:
            await reader.close()

    batches, partitions = run(scenario())
    assert sorted(records_of(batches)) == sorted(event(i) for i in range(8))
    assert partitions == [
        partition_source(nats_stream_name, s) for s in wide.partition_subjects + [wide.subject]
    ]


def test_a_member_whose_heartbeats_fail_past_the_ttl_stops_reading(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """The membership table is gone (the database unreachable, as far as the reader can tell):
    the reader keeps its partitions for the TTL, then reads nothing, since the others must
    think it gone and read them."""
    spec = spec_for(nats_url, nats_stream_name, partitions=2)
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    members = SqlAggregatorMembers(engine, group=f"nats:{nats_stream_name}", ttl_seconds=0.5)

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        reader = NatsEventLogReader(
            spec,
            membership=members,
            member="a",
            heartbeat_seconds=0.1,
            member_ttl_seconds=0.5,
            fetch_wait=0.1,
        )
        try:
            await reader.read(1)
            alone = reader.reading
            t.aggregator_members.drop(engine)
            await asyncio.sleep(0.15)
            await reader.read(1)
            within_ttl = reader.reading
            await asyncio.sleep(0.6)
            await reader.read(1)
            return alone, within_ttl, reader.reading
        finally:
            await reader.close()

    try:
        alone, within_ttl, after_ttl = run(scenario())
    finally:
        engine.dispose()
    assert len(alone) == 3  # both partitions and the bare subject
    assert within_ttl == alone
    assert after_ttl == []
