"""Batched JetStream publishing and the stream set-up errors, against real NATS servers.

The shared local server (127.0.0.1:4222) with a stream per test, or a private ``nats-server``
where the test needs a server setting of its own (a small ``max_payload``, no JetStream).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
import uvloop

from adtrack.adapters.eventlog.nats_format import encode_messages
from adtrack.adapters.eventlog.nats_reader import NatsEventLogReader
from adtrack.adapters.eventlog.nats_stream import StreamSetupError, StreamSpec
from adtrack.adapters.eventlog.nats_writer import HEADER_ROOM, NatsEventLogWriter
from adtrack.adapters.sql import db
from adtrack.adapters.sql.rollup_sink import SqlRollupSink
from adtrack.aggregator.runner import Aggregator
from adtrack.config import Settings, default_nats_subject
from adtrack.services.ports import Batch
from tests.support import nats as nats_support
from tests.support.collector import Catalogue, basic_catalogue, event_record
from tests.support.nats_reading import records_of, stream_info
from tests.support.rollup_counts import counted_events
from tests.support.scaleout import (
    PrivateNats,
    processes,
    scaleout_env,
    start_collector,
    wait_until,
)

T = TypeVar("T")

pytestmark = pytest.mark.nats


def run(coro: Coroutine[Any, Any, T]) -> T:
    return uvloop.run(coro)


def spec_for(url: str, stream: str, **overrides: Any) -> StreamSpec:
    return StreamSpec(
        servers=(url,), stream=stream, subject=f"adtrack_test.{stream.lower()}", **overrides
    )


def event(i: int, *, pad: int = 0) -> bytes:
    return event_record(
        f"batch-{i}",
        tracker=1,
        ts=1_767_225_600_000_000,
        cachebuster=str(i) + "x" * pad,
        cost=1000,
        revenue=2000,
    )


async def read_all(reader: NatsEventLogReader, max_records: int = 1000) -> list[Batch]:
    """Everything there is, then closes the reader."""
    batches: list[Batch] = []
    try:
        while True:
            batch = await reader.read(max_records)
            if not batch.records:
                return batches
            batches.append(batch)
    finally:
        await reader.close()


# ---- batches ------------------------------------------------------------------------------------


def test_a_large_append_is_split_below_the_bound_and_read_back_in_order(
    nats_url: str, nats_stream_name: str
) -> None:
    spec = spec_for(nats_url, nats_stream_name, max_message_bytes=16 * 1024)
    records = [event(i, pad=100) for i in range(400)]

    async def scenario() -> tuple[int, int, list[Batch]]:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append(records)
            info = await stream_info(nats_url, nats_stream_name)
            batches = await read_all(NatsEventLogReader(spec), 150)
            return writer.stats.messages, info.state.messages, batches
        finally:
            await writer.close()

    published, stored, batches = run(scenario())
    expected = len(encode_messages(records, 16 * 1024))
    assert published == stored == expected > 5
    assert records_of(batches) == records
    # reads of about 150 records: whole messages, so never more than one message beyond it
    per_message = len(records) // expected + 1
    assert all(len(b.records) <= 150 + per_message for b in batches[:-1])
    assert len(batches) >= 3


def test_messages_stay_below_the_servers_max_payload(nats_stream_name: str) -> None:
    """A server with a 64 KiB ``max_payload``: the 1 MiB default bound gives way to it."""
    records = [event(i, pad=200) for i in range(1500)]  # about 0.45 MiB in one append
    with PrivateNats("max_payload: 65536") as server:
        spec = spec_for(server.url, nats_stream_name)

        async def scenario() -> tuple[int, int, list[bytes]]:
            writer = NatsEventLogWriter(spec)
            try:
                await writer.append(records)
                info = await stream_info(server.url, nats_stream_name)
                got = records_of(await read_all(NatsEventLogReader(spec)))
                return writer.stats.messages, info.state.bytes, got
            finally:
                await writer.close()

        messages, stored_bytes, got = run(scenario())
    assert got == records
    total = sum(len(record) for record in records)
    assert total > 4 * 65536  # could not have gone as one message
    assert messages == len(encode_messages(records, 65536 - HEADER_ROOM))
    assert stored_bytes < messages * 65536


def test_a_stream_written_by_the_previous_version_is_still_read(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """Single-event messages on the bare subject (the format before batching and partitions,
    ``Nats-Msg-Id`` = event id) and batches on the partitions in one stream: the reader hands
    out both, and the aggregator counts each event once. Needs the sink that commits positions
    by compare-and-set."""
    spec = spec_for(nats_url, nats_stream_name)
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)

    async def scenario() -> list[bytes]:
        writer = NatsEventLogWriter(spec)
        try:
            await writer.append([event(0)])  # creates the stream
            nc = await nats.connect(nats_url)
            try:
                js = nc.jetstream()
                for i in range(1, 6):  # as the previous version published them
                    await js.publish(spec.subject, event(i), headers={"Nats-Msg-Id": f"batch-{i}"})
            finally:
                await nc.close()
            await writer.append([event(i) for i in range(6, 10)])
        finally:
            await writer.close()
        got = records_of(await read_all(NatsEventLogReader(spec)))
        reader = NatsEventLogReader(spec)
        aggregator = Aggregator(reader, SqlRollupSink(engine), archive=None)
        try:
            while await aggregator.run_once(max_records=4):
                pass
        finally:
            await reader.close()
        return got

    try:
        got = run(scenario())
        counted = counted_events(engine)
    finally:
        engine.dispose()
    assert sorted(got) == sorted(event(i) for i in range(10))
    old = [record for record in got if record in {event(i) for i in range(1, 6)}]
    assert old == [event(i) for i in range(1, 6)]  # the bare subject in order
    assert counted == 10


def test_a_batch_read_again_by_a_second_aggregator_counts_each_event_once(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """Two aggregators read the same batches (the second one from the stream's start, as after
    losing track of the positions); the batches the first one committed are refused to the
    second one by the positions' compare-and-set. Needs that sink."""
    spec = spec_for(nats_url, nats_stream_name)
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)

    async def scenario() -> int:
        writer = NatsEventLogWriter(spec)
        try:
            for start in range(0, 300, 100):
                await writer.append([event(i) for i in range(start, start + 100)])
        finally:
            await writer.close()
        first = NatsEventLogReader(spec, fetch_wait=0.2)
        second = NatsEventLogReader(spec, fetch_wait=0.2)
        try:
            late = Aggregator(second, SqlRollupSink(engine), archive=None)
            await late.reset()  # reads from the start, whatever gets committed meanwhile
            early = Aggregator(first, SqlRollupSink(engine), archive=None)
            committed_first = await early.run_once(max_records=1000)
            for _ in range(5):
                await late.run_once(max_records=1000)
        finally:
            await first.close()
            await second.close()
        return committed_first

    try:
        committed_first = run(scenario())
        counted = counted_events(engine)
    finally:
        engine.dispose()
    assert committed_first == 300
    assert counted == 300  # the second aggregator added nothing


# ---- set-up errors ------------------------------------------------------------------------------


def test_default_subject_derives_from_the_stream_name(tmp_path: Path) -> None:
    def subject(**env: str) -> str:
        return Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path), **env}).nats_subject

    assert subject() == "adtrack.events"  # existing installs keep their subject
    assert subject(ADTRACK_NATS_STREAM="ADTRACK_EVENTS") == "adtrack.events"
    assert subject(ADTRACK_NATS_STREAM="EVENTS_EU") == "adtrack.events.EVENTS_EU"
    assert subject(ADTRACK_NATS_STREAM="EVENTS_EU", ADTRACK_NATS_SUBJECT="eu.x") == "eu.x"
    assert default_nats_subject("B") == "adtrack.events.B"


def test_two_installs_with_their_own_stream_names_share_one_nats(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """Only ``ADTRACK_NATS_STREAM`` differs: the derived subjects do not overlap."""
    other = nats_stream_name + "_B"
    specs = [
        StreamSpec.from_settings(
            Settings.from_env(
                {
                    "ADTRACK_DATA_DIR": str(tmp_path),
                    "ADTRACK_EVENT_LOG": nats_url,
                    "ADTRACK_NATS_STREAM": name,
                }
            )
        )
        for name in (nats_stream_name, other)
    ]

    async def scenario() -> list[list[bytes]]:
        got = []
        for n, spec in enumerate(specs):
            writer = NatsEventLogWriter(spec)
            try:
                await writer.append([event(n)])
            finally:
                await writer.close()
        for spec in specs:
            got.append(records_of(await read_all(NatsEventLogReader(spec))))
        return got

    try:
        assert run(scenario()) == [[event(0)], [event(1)]]
    finally:
        nats_support.delete_stream(other, nats_url)


def test_a_subject_taken_by_another_stream_is_reported_with_the_settings_to_change(
    nats_url: str, nats_stream_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The second install's stream cannot be created: appends fail (503), the reason names the
    stream that has the subject, the subject and both settings; logged once, not per retry."""
    owner = nats_stream_name + "_OWNER"
    subject = f"adtrack_test.{nats_stream_name.lower()}"
    spec = StreamSpec(servers=(nats_url,), stream=nats_stream_name, subject=subject)

    async def scenario() -> tuple[str, str | None]:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(name=owner, subjects=[subject])
        finally:
            await nc.close()
        writer = NatsEventLogWriter(spec, connect_wait=2.0)
        try:
            with pytest.raises(StreamSetupError) as refused:
                await writer.append([event(1)])
            for _ in range(3):  # retries after the back-off fail the same way
                await asyncio.sleep(1.1)
                with pytest.raises(StreamSetupError):
                    await writer.append([event(1)])
            return str(refused.value), writer.readiness()
        finally:
            await writer.close()

    caplog.set_level(logging.WARNING, logger="adtrack.adapters.eventlog.nats_connection")
    try:
        reason, readiness = run(scenario())
    finally:
        nats_support.delete_stream(owner, nats_url)
    for part in (nats_stream_name, f"stream {owner}", repr(subject), "ADTRACK_NATS_SUBJECT"):
        assert part in reason
    assert f"ADTRACK_NATS_STREAM={owner}" in reason
    assert f"adtrack.events.{nats_stream_name}" in reason  # the default it would derive
    assert readiness == reason  # what /readyz shows
    logged = [r for r in caplog.records if owner in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert "NotFoundError" not in reason


def test_a_partition_subject_taken_by_another_stream_is_reported(
    nats_url: str, nats_stream_name: str
) -> None:
    """Our stream exists with the bare subject only (an earlier version's), and another stream
    captures one of the partition subjects: adding the partitions fails, naming that stream."""
    owner = nats_stream_name + "_OWNER"
    spec = spec_for(nats_url, nats_stream_name, partitions=4)
    taken = f"{spec.subject}.2"

    async def scenario() -> tuple[str, list[str]]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await js.add_stream(name=nats_stream_name, subjects=[spec.subject])
            await js.add_stream(name=owner, subjects=[taken])
        finally:
            await nc.close()
        writer = NatsEventLogWriter(spec)
        try:
            with pytest.raises(StreamSetupError) as refused:
                await writer.append([event(1)])
        finally:
            await writer.close()
        info = await stream_info(nats_url, nats_stream_name)
        return str(refused.value), list(info.config.subjects or [])

    try:
        reason, subjects = run(scenario())
    finally:
        nats_support.delete_stream(owner, nats_url)
    assert f"its subject {taken!r} is already captured by stream {owner}" in reason
    assert "ADTRACK_NATS_SUBJECT" in reason and f"ADTRACK_NATS_STREAM={owner}" in reason
    assert subjects == [spec.subject]  # left as it was


def test_a_server_without_jetstream_is_reported_as_such(nats_stream_name: str) -> None:
    with PrivateNats(jetstream=False) as server:
        spec = spec_for(server.url, nats_stream_name)

        async def scenario() -> tuple[str, str | None]:
            writer = NatsEventLogWriter(spec)
            try:
                with pytest.raises(StreamSetupError) as refused:
                    await writer.append([event(1)])
                return str(refused.value), writer.readiness()
            finally:
                await writer.close()

        reason, readiness = run(scenario())
    assert "JetStream is not enabled" in reason and "-js" in reason
    assert readiness == reason


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.mark.slow
def test_a_collector_shows_the_subject_conflict_on_readyz_and_recovers(
    nats_url: str, nats_stream_name: str, tmp_path: Path
) -> None:
    """A real ``adtrack collector`` whose stream cannot be created: pixels answer 503, /readyz
    says why (the stream holding the subject, the settings), the log says it once; once the
    conflict is gone the collector takes events again without a restart."""
    owner = nats_stream_name + "_OWNER"
    url = f"sqlite:///{tmp_path / 'adtrack.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        tracker = basic_catalogue(Catalogue(engine)).imp
    finally:
        engine.dispose()
    env = scaleout_env(url, nats_url, nats_stream_name, tmp_path / "data")

    async def take_subject() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(name=owner, subjects=[env["ADTRACK_NATS_SUBJECT"]])
        finally:
            await nc.close()

    asyncio.run(take_subject())
    try:
        with processes() as started:
            collector, port = start_collector(env, tmp_path)
            started.append(collector)
            for _ in range(3):
                status, _body = _get(port, f"/imptr?id={tracker}")
                assert status == 503
                time.sleep(0.6)
            status, body = _get(port, "/readyz")
            assert status == 503
            assert f"stream {owner}" in body and "ADTRACK_NATS_SUBJECT" in body, body
            reported = [
                line
                for line in collector.output().splitlines()
                if f"already captured by stream {owner}" in line
            ]
            # once by the event log (however often it retried), once by the collector's first 503
            assert len(reported) == 2, reported
            assert (
                sum("adtrack.adapters.eventlog.nats_connection" in line for line in reported) == 1
            )

            nats_support.delete_stream(owner, nats_url)
            assert wait_until(lambda: _get(port, "/readyz")[0] == 200, 10), collector.output()
            assert _get(port, f"/imptr?id={tracker}")[0] == 200
            assert "is ready now" in collector.output()
    finally:
        nats_support.delete_stream(owner, nats_url)
