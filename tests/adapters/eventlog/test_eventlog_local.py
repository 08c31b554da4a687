"""The embedded event log: framing, rotation, readers, fsync policies, real disk failures
(a full tmpfs, a read-only remount, a removed folder) and ``kill -9`` of a writing process."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
import zlib
from collections import Counter
from pathlib import Path

import orjson
import pytest

from adtrack.adapters.eventlog import factory
from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.adapters.eventlog.segment_files import WriterIdInUse, list_segments
from adtrack.adapters.eventlog.segment_format import (
    FRAME_HEAD_SIZE,
    HEADER_SIZE,
    ScanStop,
    encode_frame,
    scan_frames,
)
from adtrack.config import Settings
from adtrack.services.ports import Batch, EventLogUnavailable
from tests.support.disks import tmpfs


def record(batch: int, index: int, pad: int = 0) -> bytes:
    return orjson.dumps({"b": batch, "r": index, "pad": "x" * pad})


def batch_of(batch: int, size: int, pad: int = 0) -> list[bytes]:
    return [record(batch, i, pad) for i in range(size)]


def read_all(directory: Path, max_records: int = 1000) -> tuple[list[Batch], LocalEventLogReader]:
    reader = LocalEventLogReader(directory, consumer="tests")
    batches: list[Batch] = []
    while True:
        batch = reader.read_now(max_records)
        if not batch.records and not batch.position:
            return batches, reader
        batches.append(batch)


def records_of(batches: list[Batch]) -> list[bytes]:
    return [r for b in batches for r in b.records]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


# --- format ----------------------------------------------------------------------------------


def test_a_frame_is_delivered_whole_or_not_at_all() -> None:
    frame = encode_frame([b"one", b"two", b"three"])
    assert scan_frames(frame, 100, 10).records == [b"one", b"two", b"three"]
    assert scan_frames(frame, 100, 10).next_offset == 100 + len(frame)
    for cut in range(1, len(frame)):  # every possible torn write
        scan = scan_frames(frame[:cut], 100, 10)
        assert scan.records == [] and scan.stop is ScanStop.INCOMPLETE
        assert scan.next_offset == 100
    for i in range(len(frame)):  # every single flipped byte
        damaged = bytearray(frame)
        damaged[i] ^= 0x40
        scan = scan_frames(bytes(damaged), 0, 10)
        assert scan.records == [], i
    zeros = bytes(len(frame))  # a hole of zeros after a crash
    assert scan_frames(zeros, 0, 10).stop is ScanStop.CORRUPT


def test_the_frame_checksum_is_zlibs_crc32() -> None:
    # (the checksum is computed with ISA-L; segments written with zlib's crc32 stay readable)
    records = [os.urandom(n) for n in (1, 7, 300, 4000)]
    frame = encode_frame(records)
    head, crc, payload = frame[:12], frame[12:16], frame[16:]
    assert int.from_bytes(crc, "little") == zlib.crc32(head + payload)
    assert scan_frames(frame, 0, 10).records == records


def test_scan_never_splits_a_frame_and_respects_the_limit() -> None:
    data = encode_frame([b"a"] * 3) + encode_frame([b"b"] * 3) + encode_frame([b"c"] * 3)
    assert len(scan_frames(data, 0, 5).records) == 3  # the second frame would exceed 5
    assert len(scan_frames(data, 0, 6).records) == 6
    assert len(scan_frames(data, 0, 1).records) == 3  # one whole frame even above the limit
    with pytest.raises(ValueError):
        encode_frame([b"ok", b""])


# --- writing and reading ---------------------------------------------------------------------


def test_many_writers_many_segments_each_record_read_once(tmp_path: Path) -> None:
    async def write() -> None:
        writers = [
            LocalEventLogWriter(tmp_path, fsync="never", segment_bytes=4096) for _ in range(3)
        ]
        for i in range(60):
            await writers[i % 3].append(batch_of(i, 1 + i % 7, pad=50))
        for writer in writers:
            await writer.close()

    run(write())
    segments = list_segments(tmp_path)
    assert len(segments) == 3 and all(len(s) > 1 for s in segments.values())  # rotated

    batches, reader = read_all(tmp_path, max_records=10)
    got = [orjson.loads(r) for r in records_of(batches)]
    assert Counter((g["b"], g["r"]) for g in got) == Counter(
        (i, r) for i in range(60) for r in range(1 + i % 7)
    )
    for b in batches:
        assert len(b.records) <= 10
    # Within one writer, appends come out in order.
    for w in range(3):
        order = [g["b"] for g in got if g["b"] % 3 == w]
        assert order == sorted(order)
    assert reader.skipped_bytes == 0
    # Positions cover every byte of every (final) segment.
    final: dict[str, int] = {}
    for b in batches:
        assert isinstance(b.position, dict)
        final.update(b.position)
    for names in segments.values():
        for _, name in names:
            assert final[name] == (tmp_path / name).stat().st_size


def test_restore_resumes_after_the_acked_positions(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never", segment_bytes=2048)
        for i in range(20):
            await writer.append(batch_of(i, 5, pad=20))
        reader = LocalEventLogReader(tmp_path, consumer="a")
        first = await reader.read(30)
        assert len(first.records) == 30
        await reader.ack(first)
        assert isinstance(first.position, dict)

        resumed = LocalEventLogReader(tmp_path, consumer="a")
        resumed.restore(first.position)
        rest: list[bytes] = []
        while batch := (await resumed.read(1000)).records:
            rest.extend(batch)
        assert sorted(first.records + rest) == sorted(
            r for i in range(20) for r in batch_of(i, 5, pad=20)
        )
        assert not set(first.records) & set(rest)
        await writer.close()

    run(scenario())


def test_torn_tail_waits_while_the_writer_lives_and_is_skipped_once_final(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never")
        await writer.append(batch_of(1, 3))
        name = writer.current_segment
        assert name is not None
        torn = encode_frame(batch_of(2, 3))[:-5]  # a write cut short
        with open(tmp_path / name, "ab") as f:
            f.write(torn)

        reader = LocalEventLogReader(tmp_path, consumer="t")
        first = reader.read_now(100)
        assert first.records == batch_of(1, 3)
        # The writer still holds the segment: the rest may be on its way, so nothing is
        # skipped and the position stays before the partial frame.
        again = reader.read_now(100)
        assert again.records == [] and again.position == {}
        assert reader.skipped_bytes == 0

        await writer.close()  # now final: the partial frame can never complete
        last = reader.read_now(100)
        assert last.records == []
        assert last.position == {name: (tmp_path / name).stat().st_size}
        assert reader.skipped_bytes == len(torn)

    run(scenario())


def test_a_later_segment_makes_the_earlier_one_final(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never", segment_bytes=HEADER_SIZE + 10)
        await writer.append(batch_of(1, 1))
        first = writer.current_segment
        assert first is not None
        with open(tmp_path / first, "ab") as f:
            f.write(b"\x00" * 7)  # garbage after the last frame
        await writer.append(batch_of(2, 1))  # rotates: the first segment is final now
        assert writer.current_segment != first
        batches, reader = read_all(tmp_path)
        assert records_of(batches) == batch_of(1, 1) + batch_of(2, 1)
        assert reader.skipped_bytes == 7
        await writer.close()

    run(scenario())


def test_a_corrupt_frame_in_a_final_segment_is_never_delivered(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never")
        await writer.append(batch_of(1, 2))
        await writer.append(batch_of(2, 2))
        name = writer.current_segment
        await writer.close()
        assert name is not None
        path = tmp_path / name
        data = bytearray(path.read_bytes())
        data[-3] ^= 0xFF  # bit rot inside the second frame
        path.write_bytes(bytes(data))
        batches, reader = read_all(tmp_path)
        assert records_of(batches) == batch_of(1, 2)
        assert reader.skipped_bytes == len(encode_frame(batch_of(2, 2)))

    run(scenario())


def test_an_append_larger_than_max_records_comes_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never")
        await writer.append(batch_of(1, 50))
        await writer.append(batch_of(2, 1))
        await writer.close()

    run(scenario())
    reader = LocalEventLogReader(tmp_path, consumer="t")
    assert len(reader.read_now(10).records) == 50
    assert reader.read_now(10).records == batch_of(2, 1)


def test_big_frames_cross_the_read_chunk(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never")
        for i in range(5):
            await writer.append(batch_of(i, 20, pad=3000))  # ~60 KB frames
        await writer.close()

    run(scenario())
    reader = LocalEventLogReader(tmp_path, consumer="t", read_chunk_bytes=4096)
    got: list[bytes] = []
    while records := reader.read_now(25).records:
        got.extend(records)
    assert got == [r for i in range(5) for r in batch_of(i, 20, pad=3000)]


# --- fsync policies --------------------------------------------------------------------------


def test_always_makes_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    async def scenario() -> LocalEventLogWriter:
        writer = LocalEventLogWriter(tmp_path, fsync="always")
        await asyncio.gather(*(writer.append(batch_of(i, 2)) for i in range(200)))
        await writer.close()
        return writer

    writer = run(scenario())
    assert isinstance(writer, LocalEventLogWriter)
    assert writer.stats.appends == 200
    assert 1 <= writer.stats.fsyncs < 200  # group commit: one fsync covered many appends
    batches, _ = read_all(tmp_path)
    assert len(records_of(batches)) == 400


def test_interval_syncs_in_the_background(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="interval", fsync_interval_ms=20)
        await writer.append(batch_of(1, 1))
        assert writer.stats.fsyncs == 0  # append did not wait for the disk
        deadline = time.monotonic() + 5
        while writer.stats.fsyncs == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert writer.stats.fsyncs >= 1
        await writer.close()

    run(scenario())


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync policy"):
        LocalEventLogWriter(tmp_path, fsync="sometimes")
    with pytest.raises(ValueError, match="writer id"):
        LocalEventLogWriter(tmp_path, writer_id="../evil")


def test_an_explicit_writer_id_is_exclusive_and_never_reuses_names(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = LocalEventLogWriter(tmp_path, writer_id="collector-1", fsync="never")
        with pytest.raises(WriterIdInUse):
            LocalEventLogWriter(tmp_path, writer_id="collector-1")
        await first.append(batch_of(1, 1))
        assert first.current_segment == "collector-1-00000001.seg"
        await first.close()
        for seg in tmp_path.glob("*.seg"):
            seg.unlink()  # e.g. pruned after being consumed
        second = LocalEventLogWriter(tmp_path, writer_id="collector-1", fsync="never")
        await second.append(batch_of(2, 1))
        # A stored position for the old name can never point into this file.
        assert second.current_segment == "collector-1-00000002.seg"
        await second.close()

    run(scenario())


def test_a_forked_child_cannot_use_the_parents_writer(tmp_path: Path) -> None:
    writer = LocalEventLogWriter(tmp_path, fsync="never")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            asyncio.run(writer.append([b"x"]))
        except RuntimeError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    async def parent() -> None:
        await writer.append([b"parent"])
        await writer.close()

    run(parent())
    batches, _ = read_all(tmp_path)
    assert records_of(batches) == [b"parent"]


# --- real disk failures ----------------------------------------------------------------------


def test_disk_full_refuses_whole_batches_and_recovers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:
        log_dir = disk / "eventlog"

        async def scenario() -> None:
            writer = LocalEventLogWriter(
                log_dir, fsync="always", retry_backoff=0.05, max_retry_backoff=0.05
            )
            acked: list[int] = []
            failed: int | None = None
            for i in range(200):  # ~1.4 KB per batch, not page aligned: partial writes happen
                try:
                    await writer.append(batch_of(i, 3, pad=450))
                except EventLogUnavailable:
                    failed = i
                    break
                acked.append(i)
            assert failed is not None, "the 64 KiB disk never filled up"
            assert not writer.healthy and "space" in (writer.failure or "")
            # The failed batch was cut off (or its segment abandoned): no byte of it is read.
            batches, _ = read_all(log_dir)
            got = {orjson.loads(r)["b"] for r in records_of(batches)}
            assert got == set(acked)
            assert len(records_of(batches)) == 3 * len(acked)

            with pytest.raises(EventLogUnavailable):  # in back-off: not even tried
                await writer.append(batch_of(999, 1))

            # Space comes back (the consumed segments are deleted): it recovers by itself.
            for seg in log_dir.glob("*.seg"):
                seg.unlink()
            await asyncio.sleep(0.06)
            await writer.append(batch_of(1000, 3, pad=450))
            assert writer.healthy
            batches, _ = read_all(log_dir)
            assert {orjson.loads(r)["b"] for r in records_of(batches)} == {1000}
            await writer.close()

        run(scenario())


def test_readiness_on_a_full_disk_and_back_without_appends(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:

        async def scenario() -> None:
            writer = LocalEventLogWriter(disk, fsync="interval", max_retry_backoff=0.05)
            assert writer.readiness() is None
            with pytest.raises(EventLogUnavailable):
                for i in range(500):
                    await writer.append(batch_of(i, 2, pad=700))
            reason = writer.readiness()
            assert reason is not None and "space" in reason
            await asyncio.sleep(0.06)
            assert "space" in (writer.readiness() or "")  # tried again: still full
            # space comes back: the next readiness check finds a segment can be written
            for seg in disk.glob("*.seg"):
                seg.unlink()
            await asyncio.sleep(0.06)
            assert writer.readiness() is None
            await writer.append(batch_of(1000, 1))
            await writer.close()
            assert writer.readiness() == "the event log writer is closed"

        run(scenario())


def test_disk_full_with_interval_policy_too(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64k") as disk:

        async def scenario() -> None:
            writer = LocalEventLogWriter(disk, fsync="interval", max_retry_backoff=0.05)
            acked = 0
            with pytest.raises(EventLogUnavailable):
                for i in range(500):
                    await writer.append(batch_of(i, 2, pad=700))
                    acked += 1
            await writer.close()
            batches, _ = read_all(disk)
            assert len(records_of(batches)) == 2 * acked

        run(scenario())


def test_read_only_disk_answers_unavailable_until_writable_again(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        # (Linux refuses to remount a filesystem read-only while a file on it is open for
        # writing, so the disk is read-only before the writer opens its first segment.)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

        async def scenario() -> None:
            writer = LocalEventLogWriter(disk, fsync="always", max_retry_backoff=0.05)
            try:
                with pytest.raises(EventLogUnavailable, match="[Rr]ead-only"):
                    await writer.append(batch_of(1, 2))
                await asyncio.sleep(0.06)
                with pytest.raises(EventLogUnavailable):  # still read-only: retried, refused
                    await writer.append(batch_of(2, 2))
            finally:
                subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
            await asyncio.sleep(0.06)
            await writer.append(batch_of(3, 2))
            assert writer.healthy
            await writer.close()
            batches, _ = read_all(disk)
            assert records_of(batches) == batch_of(3, 2)

        run(scenario())


def _chattr(flag: str, *paths: Path) -> None:
    result = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"chattr {flag} is not possible here: {result.stderr.strip()}")


def test_a_segment_that_refuses_writes_is_abandoned_for_a_new_one(tmp_path: Path) -> None:
    """The open segment suddenly refuses writes (here: made immutable, which even root cannot
    write to): 503 while the folder refuses new files too, then a fresh segment."""

    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="always", max_retry_backoff=0.05)
        await writer.append(batch_of(1, 2))
        first = tmp_path / str(writer.current_segment)
        _chattr("+i", first, tmp_path)
        try:
            with pytest.raises(EventLogUnavailable):
                await writer.append(batch_of(2, 2))
            await asyncio.sleep(0.06)
            with pytest.raises(EventLogUnavailable):  # no new segment can be created yet
                await writer.append(batch_of(3, 2))
            _chattr("-i", tmp_path)
            await asyncio.sleep(0.06)
            await writer.append(batch_of(4, 2))
            assert writer.healthy and writer.current_segment != first.name
            await writer.close()
        finally:
            _chattr("-i", first, tmp_path)
        batches, reader = read_all(tmp_path)
        assert records_of(batches) == batch_of(1, 2) + batch_of(4, 2)
        assert reader.skipped_bytes == 0

    run(scenario())


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_a_removed_folder_is_noticed_and_recreated(tmp_path: Path, policy: str) -> None:
    log_dir = tmp_path / "eventlog"

    async def scenario() -> None:
        writer = LocalEventLogWriter(
            log_dir, fsync=policy, fsync_interval_ms=10, max_retry_backoff=0.05
        )
        await writer.append(batch_of(1, 1))
        shutil.rmtree(log_dir)
        if policy == "always":
            # The write lands in a file nobody can find: the fsync step notices, so the
            # request is answered 503 instead of being acknowledged.
            with pytest.raises(EventLogUnavailable):
                await writer.append(batch_of(2, 1))
        else:
            deadline = time.monotonic() + 5
            while writer.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert not writer.healthy
        await asyncio.sleep(0.06)
        await writer.append(batch_of(3, 1))
        assert writer.healthy
        await writer.close()
        batches, _ = read_all(log_dir)
        assert records_of(batches) == batch_of(3, 1)

    run(scenario())


def test_a_missing_data_directory_is_not_recreated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def scenario() -> None:
        writer = LocalEventLogWriter(data_dir / "eventlog", fsync="never", max_retry_backoff=0.05)
        await writer.append(batch_of(1, 1))
        shutil.rmtree(data_dir)  # e.g. the disk holding the data directory went away
        deadline = time.monotonic() + 5  # "never" has no fsync: a check runs every second
        while writer.healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not writer.healthy
        await asyncio.sleep(0.06)
        with pytest.raises(EventLogUnavailable):
            await writer.append(batch_of(2, 1))
        assert not data_dir.exists()
        data_dir.mkdir()  # the disk is back
        await asyncio.sleep(0.06)
        await writer.append(batch_of(3, 1))
        await writer.close()

    run(scenario())


# --- kill -9 ---------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import orjson
    from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter

    async def main(directory, policy):
        writer = LocalEventLogWriter(directory, fsync=policy, segment_bytes=1 << 20)
        i = 0
        while True:
            size = 1 + (i * 7919) % 200
            pad = 20000 if i % 4 == 0 else 30  # some big appends: kills often land mid-write
            records = [orjson.dumps({"b": i, "r": r, "n": size, "pad": "x" * pad})
                       for r in range(size)]
            await writer.append(records)
            sys.stdout.write(f"{i}\\n")  # only printed once append returned
            sys.stdout.flush()
            i += 1

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["never", "interval", "always"])
def test_kill9_keeps_every_acknowledged_append_exactly_once(tmp_path: Path, policy: str) -> None:
    rng = random.Random(policy)
    skipped_total = 0
    for round_no in range(3):
        log_dir = tmp_path / f"log{round_no}"
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(log_dir), policy],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        target = rng.randrange(5, 120)
        for _ in range(target):
            assert child.stdout.readline(), "the writer process stopped early"
        time.sleep(rng.random() * 0.03)
        child.kill()  # SIGKILL
        child.wait()
        rest = child.stdout.read()
        acked_lines = target + rest.count("\n")  # a final line without "\n" was not acked
        child.stdout.close()

        batches, reader = read_all(log_dir, max_records=500)
        skipped_total += reader.skipped_bytes
        seen: Counter[tuple[int, int]] = Counter()
        sizes: dict[int, int] = {}
        for raw in records_of(batches):
            item = orjson.loads(raw)
            seen[(item["b"], item["r"])] += 1
            sizes[item["b"]] = item["n"]
        assert all(count == 1 for count in seen.values()), "a record was read twice"
        present = sorted(sizes)
        # Every acknowledged append is there; at most the one in flight when killed is extra.
        assert present[:acked_lines] == list(range(acked_lines))
        assert len(present) in (acked_lines, acked_lines + 1)
        for b in present:  # and every append is complete: never half of one
            assert all((b, r) in seen for r in range(sizes[b]))
            assert sum(1 for key in seen if key[0] == b) == sizes[b]
    print(f"{policy}: torn bytes skipped over 3 kills: {skipped_total}")


# --- pruning and the factory -----------------------------------------------------------------


def test_prune_deletes_only_consumed_acked_and_old_segments(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LocalEventLogWriter(tmp_path, fsync="never", segment_bytes=1024)
        for i in range(10):
            await writer.append(batch_of(i, 4, pad=50))
        live = writer.current_segment
        reader = LocalEventLogReader(tmp_path, consumer="p")
        batch = await reader.read(10_000)
        assert reader.prune(0) == []  # read but not acked: kept
        await reader.ack(batch)
        assert reader.prune(3600) == []  # too recent
        removed = reader.prune(0)
        assert removed and live not in removed  # the writer's open segment stays
        assert {p.name for p in tmp_path.glob("*.seg")} == {live}
        await writer.append(batch_of(99, 1))
        assert (await reader.read(100)).records == batch_of(99, 1)
        await writer.close()

    run(scenario())


def test_factory_picks_the_local_log_and_names_the_unimplemented_one(tmp_path: Path) -> None:
    settings = Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_FSYNC": "always"})
    writer = factory.open_writer(settings, writer_id="w1")
    assert isinstance(writer, LocalEventLogWriter) and writer.policy == "always"
    reader = factory.open_reader(settings, consumer="aggregator")
    assert isinstance(reader, LocalEventLogReader)

    async def scenario() -> None:
        await writer.append([b"hello"])
        await writer.close()
        assert (await reader.read(10)).records == [b"hello"]

    run(scenario())
    assert (tmp_path / "eventlog").is_dir()

    nats = Settings.from_env(
        {"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_EVENT_LOG": "nats://x:4222"}
    )
    # JetStream parts (test_eventlog_nats.py) connect lazily: opening needs no server
    assert not factory.is_local(nats)
    assert type(factory.open_writer(nats)).__name__ == "NatsEventLogWriter"
    assert type(factory.open_reader(nats, consumer="aggregator")).__name__ == "NatsEventLogReader"
    bad = Settings.from_env({"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_EVENT_LOG": "kafka://x"})
    with pytest.raises(ValueError, match="ADTRACK_EVENT_LOG"):
        factory.open_writer(bad)


def test_the_frame_head_size_is_what_the_docs_say() -> None:
    assert HEADER_SIZE == 16 and FRAME_HEAD_SIZE == 16
