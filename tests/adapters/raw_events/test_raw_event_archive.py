"""The raw-event archive: hourly Parquet files and their manifest, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from adtrack.adapters.raw_events import parquet_archive
from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader
from adtrack.adapters.raw_events.manifest import HOUR_MICROS, hour_start, register_files
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.aggregator import process as aggregator_process
from adtrack.config import Settings
from adtrack.domain.events import ADDED_IN_FORMAT_3, Event
from adtrack.services.raw_event_columns import events_to_table
from tests.support.events import AN_IMPRESSION
from tests.support.raw_events import archived_count, archived_events, manifest_paths

HOUR = AN_IMPRESSION.ts // HOUR_MICROS  # 2026-01-01T00


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "raw-events"


def events_in(hour: int, n: int, prefix: str, clicks_every: int = 3) -> list[Event]:
    """``n`` events spread over epoch hour ``hour``, every ``clicks_every``-th a click."""
    step = HOUR_MICROS // n
    return [
        AN_IMPRESSION._replace(
            event_id=f"{prefix}-{i:05d}",
            ts=hour * HOUR_MICROS + i * step,
            imp_type=10 if i % clicks_every == 0 else 9,
            user_agent=f"agent {i % 7}",
            referrer=None if i % 2 else f"https://site{i}.example/",
            placement_id=None if i % 4 else i,
        )
        for i in range(n)
    ]


def as_rows(events: list[Event]) -> list[dict[str, object]]:
    return sorted((e._asdict() for e in events), key=lambda r: (r["ts"], r["event_id"]))


def stage_and_register(
    engine: Engine, archive: ParquetRawEventArchive, events: list[Event], key: str
) -> None:
    files = archive.stage(events_to_table(events), key)
    with engine.begin() as conn:
        register_files(conn, files)


def test_the_same_batch_gives_the_same_bytes(tmp_path: Path) -> None:
    events = events_in(HOUR, 500, "a")
    first, second = (
        ParquetRawEventArchive(tmp_path / "one"),
        ParquetRawEventArchive(tmp_path / "two"),
    )
    (a,) = first.stage(events_to_table(events), "log:0-500")
    (b,) = second.stage(events_to_table(events), "log:0-500")
    assert a == b
    content = (tmp_path / "one" / a.path).read_bytes()
    assert content == (tmp_path / "two" / b.path).read_bytes()
    assert len(content) == a.bytes
    # Staged again after a crash: the same file, rewritten with the same content.
    assert first.stage(events_to_table(events), "log:0-500") == [a]
    assert (tmp_path / "one" / a.path).read_bytes() == content
    # Another batch key: another file.
    (c,) = first.stage(events_to_table(events), "log:500-1000")
    assert c.path != a.path


def test_a_batch_is_split_by_utc_hour(tmp_path: Path) -> None:
    archive = ParquetRawEventArchive(tmp_path)
    early, late = events_in(HOUR, 10, "early"), events_in(HOUR + 2, 5, "late", clicks_every=1)
    events = [late[0], *early, *late[1:]]  # log order, not time order
    files = archive.stage(events_to_table(events), "batch")
    assert [(f.hour, f.rows, f.clicks) for f in files] == [(HOUR, 10, 4), (HOUR + 2, 5, 5)]
    name = files[0].path.split("/")[1]
    assert [f.path for f in files] == [
        f"hour=2026-01-01T00/{name}",
        f"hour=2026-01-01T02/{name}",
    ]
    assert name.startswith("batch-") and name.endswith(".parquet") and len(name) == 38
    for f, expected in zip(files, (early, [late[0], *late[1:]]), strict=True):
        table = pq.read_table(tmp_path / f.path)
        assert table.column("event_id").to_pylist() == [e.event_id for e in expected]
        assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert archive.stage(events_to_table([]), "empty") == []


def test_a_batch_in_time_order_is_split_into_the_files_of_its_hours_alone(tmp_path: Path) -> None:
    # Each hour's rows are together (the usual case): they are written from slices of the
    # batch, which must give the very bytes of a batch holding that hour's events alone.
    early, late = events_in(HOUR, 10, "early"), events_in(HOUR + 2, 5, "late", clicks_every=1)
    files = ParquetRawEventArchive(tmp_path / "both").stage(
        events_to_table([*late, *early]), "batch"
    )
    assert [(f.hour, f.rows, f.clicks) for f in files] == [(HOUR, 10, 4), (HOUR + 2, 5, 5)]
    for f, alone in zip(files, (early, late), strict=True):
        (single,) = ParquetRawEventArchive(tmp_path / f"alone-{f.hour}").stage(
            events_to_table(alone), "batch"
        )
        assert single.path == f.path
        assert (tmp_path / "both" / f.path).read_bytes() == (
            tmp_path / f"alone-{f.hour}" / single.path
        ).read_bytes()


def test_hours_before_1970_are_floored_like_the_rest(tmp_path: Path) -> None:
    # a clock gone wrong: hour -1 holds ts -1, hour 0 holds ts 0 (not both in hour 0)
    events = [*events_in(-1, 3, "before"), *events_in(0, 2, "after"), *events_in(-2, 1, "b2")]
    files = ParquetRawEventArchive(tmp_path).stage(events_to_table(events), "early")
    assert [(f.hour, f.rows) for f in files] == [(-2, 1), (-1, 3), (0, 2)]


def test_files_and_folders_are_private(tmp_path: Path) -> None:
    root = tmp_path / "raw-events"
    (f,) = ParquetRawEventArchive(root).stage(events_to_table(events_in(HOUR, 3, "p")), "p")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / f.path).parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / f.path).stat().st_mode) == 0o600


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = ParquetRawEventArchive(tmp_path)
    (good,) = archive.stage(events_to_table(events_in(HOUR, 5, "good")), "batch")
    before = (tmp_path / good.path).read_bytes()
    seen: list[tuple[bool, int]] = []
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        # At the rename the temporary file is complete and the final name still the old file.
        seen.append((Path(dst).read_bytes() == before, Path(src).stat().st_size))
        real_replace(src, dst)

    monkeypatch.setattr(parquet_archive.os, "replace", replace)
    (again,) = archive.stage(events_to_table(events_in(HOUR, 5, "good")), "batch")
    assert seen == [(True, again.bytes)]

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parquet_archive.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        archive.stage(events_to_table(events_in(HOUR, 7, "other")), "batch")
    # The committed file is untouched and no temporary file is left behind.
    assert (tmp_path / good.path).read_bytes() == before
    assert os.listdir((tmp_path / good.path).parent) == [good.path.split("/")[1]]


def test_compaction_keeps_every_row_once(engine: Engine, root: Path) -> None:
    archive = ParquetRawEventArchive(root)
    batches = [events_in(HOUR, 40, f"b{i}") for i in range(3)]
    single = events_in(HOUR + 1, 10, "single")
    open_hour = [events_in(HOUR + 2, 10, f"open{i}") for i in range(2)]
    for i, batch in enumerate([*batches, single, *open_hour]):
        stage_and_register(engine, archive, batch, f"key-{i}")
    everything = [e for batch in [*batches, single, *open_hour] for e in batch]
    old_files = manifest_paths(engine)

    merged = archive.compact(engine, closed_before_hour=hour_start(HOUR + 2))
    assert merged == 4  # three files of HOUR, and the one of HOUR + 1 rewritten sorted
    paths = manifest_paths(engine)
    assert len(paths) == 4  # one compacted file each for HOUR and HOUR + 1, the open hour's two
    compacted = [p for p in paths if "/compacted-" in p]
    assert [p.split("/")[0] for p in compacted] == ["hour=2026-01-01T00", "hour=2026-01-01T01"]
    for path in compacted:  # written sorted
        table = pq.read_table(root / path)
        ts, ids = table.column("ts").to_pylist(), table.column("event_id").to_pylist()
        keys = list(zip(ts, ids, strict=True))
        assert keys == sorted(keys)
    assert archived_events(engine, root) == as_rows(everything)
    assert archived_count(engine, root) == len(everything)
    # The merged files stay (a feed may be reading them) until they are orphans long enough.
    unlisted = set(old_files) - set(paths)
    assert all((root / path).exists() for path in unlisted)
    assert archive.delete_orphans(engine, min_age_seconds=3600) == 0
    assert archive.delete_orphans(engine, min_age_seconds=0) == len(unlisted) == 4
    assert not any((root / path).exists() for path in unlisted)

    # A late batch for the compacted hour is merged with it next time.
    late = events_in(HOUR, 5, "late")
    stage_and_register(engine, archive, late, "late")
    assert archive.compact(engine, closed_before_hour=hour_start(HOUR + 2)) == 2
    assert archive.compact(engine, closed_before_hour=hour_start(HOUR + 2)) == 0
    assert archived_events(engine, root) == as_rows(everything + late)
    assert sum(p.startswith("hour=2026-01-01T00/") for p in manifest_paths(engine)) == 1


def test_orphans_are_deleted_and_listed_files_kept(engine: Engine, root: Path) -> None:
    archive = ParquetRawEventArchive(root)
    stage_and_register(engine, archive, events_in(HOUR, 10, "kept"), "committed")
    (orphan,) = archive.stage(events_to_table(events_in(HOUR, 10, "lost")), "never-committed")
    temp = root / "hour=2026-01-01T00" / ".tmp-1-leftover.parquet"
    temp.write_bytes(b"half a file")
    (gone_hour,) = archive.stage(
        events_to_table(events_in(HOUR + 5, 3, "gone")), "never-committed-either"
    )

    assert archive.delete_orphans(engine, min_age_seconds=3600) == 0  # all too recent
    an_hour_ago = time.time() - 3601
    for path in (root / orphan.path, temp, root / gone_hour.path):
        os.utime(path, (an_hour_ago, an_hour_ago))
    os.utime((root / gone_hour.path).parent, (an_hour_ago, an_hour_ago))

    assert archive.delete_orphans(engine, min_age_seconds=3600) == 3
    assert not (root / orphan.path).exists() and not temp.exists()
    assert not (root / gone_hour.path).parent.exists()  # its hour folder went with it
    assert archived_count(engine, root) == 10
    assert [row["event_id"] for row in archived_events(engine, root)][0] == "kept-00000"


def test_purge_removes_the_hours_that_end_before_the_cutoff(engine: Engine, root: Path) -> None:
    archive = ParquetRawEventArchive(root)
    for offset in range(4):
        stage_and_register(engine, archive, events_in(HOUR + offset, 5, f"h{offset}"), f"k{offset}")
    cutoff = hour_start(HOUR + 2) + timedelta(minutes=30)  # inside hour 2: it stays
    assert archive.purge(engine, cutoff) == 10
    assert archive.purge(engine, cutoff) == 0
    assert {p.split("/")[0] for p in manifest_paths(engine)} == {
        "hour=2026-01-01T02",
        "hour=2026-01-01T03",
    }
    assert sorted(p.name for p in root.iterdir()) == ["hour=2026-01-01T02", "hour=2026-01-01T03"]
    assert archived_count(engine, root) == 10
    assert archive.purge(engine, hour_start(HOUR + 4)) == 10
    assert archived_count(engine, root) == 0


def test_a_read_survives_a_compaction_under_way(engine: Engine, root: Path) -> None:
    archive = ParquetRawEventArchive(root)
    everything = []
    for offset in range(2):
        for i in range(2):
            batch = events_in(HOUR + offset, 20, f"h{offset}b{i}")
            stage_and_register(engine, archive, batch, f"h{offset}-{i}")
            everything += batch
    reads = DuckDBRawEventReader(root, engine).read(
        hour_start(HOUR), hour_start(HOUR + 2), columns=["event_id"], batch_rows=5
    )
    seen = next(reads).column(0).to_pylist()
    # Both hours are compacted (and their old files deleted) while the first one is being read.
    assert archive.compact(engine, closed_before_hour=hour_start(HOUR + 2)) == 4
    assert archive.delete_orphans(engine, min_age_seconds=0) == 4
    seen += [event_id for batch in reads for event_id in batch.column(0).to_pylist()]
    assert seen == [row["event_id"] for row in as_rows(everything)]


def test_the_aggregators_maintenance_compacts_closed_hours_and_deletes_orphans(
    engine: Engine, root: Path, tmp_path: Path
) -> None:
    """What ``adtrack serve``'s aggregator runs every ADTRACK_RAW_EVENT_MAINTENANCE_SECONDS."""
    archive = ParquetRawEventArchive(root)
    for i in range(3):
        stage_and_register(engine, archive, events_in(HOUR, 10, f"b{i}"), f"k{i}")
    (orphan,) = archive.stage(events_to_table(events_in(HOUR, 4, "lost")), "never-committed")
    long_ago = time.time() - 3600
    os.utime(root / orphan.path, (long_ago, long_ago))
    settings = Settings.from_env(
        {"ADTRACK_DATA_DIR": str(tmp_path), "ADTRACK_RAW_EVENT_MAINTENANCE_SECONDS": "0.05"}
    )

    async def run_briefly() -> None:
        job = asyncio.create_task(aggregator_process._maintain_archive(engine, archive, settings))
        deadline = time.monotonic() + 20
        while len(manifest_paths(engine)) != 1 or (root / orphan.path).exists():
            assert time.monotonic() < deadline, "not compacted within 20 s"
            await asyncio.sleep(0.05)
        job.cancel()

    asyncio.run(run_briefly())
    (compacted,) = manifest_paths(engine)
    assert "/compacted-" in compacted
    assert archived_count(engine, root) == 30


# The columns record formats 2 and 3 added; files archived before them lack them.
FORMAT_2_COLUMNS = [
    "country",
    "device_type",
    "os",
    "browser",
    "view_state",
    "impression_event_id",
    *ADDED_IN_FORMAT_3,
]


def test_files_written_before_a_column_existed_read_it_as_null(engine: Engine, root: Path) -> None:
    def as_an_earlier_version_wrote_it(path: str) -> None:
        table = pq.read_table(root / path).drop_columns(FORMAT_2_COLUMNS)
        pq.write_table(table, root / path)

    archive = ParquetRawEventArchive(root)
    old = events_in(HOUR, 20, "old")
    (staged,) = archive.stage(events_to_table(old), "old-layout")
    as_an_earlier_version_wrote_it(staged.path)
    with engine.begin() as conn:
        register_files(conn, [staged])
    assert archived_events(engine, root) == as_rows(old)  # (through DuckDB)
    assert archive.compact(engine, closed_before_hour=hour_start(HOUR + 1)) == 1
    (compacted,) = manifest_paths(engine)
    as_an_earlier_version_wrote_it(compacted)
    assert archived_events(engine, root) == as_rows(old)  # (one sorted file: read by Arrow)
    new = [
        e._replace(country="NL", device_type="tablet", os="iOS", browser="Mobile Safari")
        for e in events_in(HOUR, 10, "new")
    ]
    new[0] = new[0]._replace(  # a conversion, with every column of format 3
        imp_type=11,
        conversion_pixel_id=3,
        order_id="A-1",
        attribution="post_click",
        source_event_id="the-click",
        source_ts=new[0].ts - 5_000_000,
    )
    stage_and_register(engine, archive, new, "new-layout")
    assert archived_events(engine, root) == as_rows(old + new)  # old and new files together
    assert archive.compact(engine, closed_before_hour=hour_start(HOUR + 1)) == 2
    (compacted,) = manifest_paths(engine)
    assert set(FORMAT_2_COLUMNS) <= set(pq.read_schema(root / compacted).names)
    assert archived_events(engine, root) == as_rows(old + new)


def test_reads_leave_viewability_beacons_out(engine: Engine, root: Path) -> None:
    """Beacons are archived with the hits but are not hits: the feeds never list them, whether
    their hour's files are read through DuckDB (several files) or straight (one sorted file)."""
    archive = ParquetRawEventArchive(root)
    hits = events_in(HOUR, 12, "hit")
    beacons = [
        hit._replace(
            event_id=f"beacon-{i}", view_state="measured", impression_event_id=hit.event_id
        )
        for i, hit in enumerate(hits)
        if hit.imp_type == 9
    ]
    stage_and_register(engine, archive, hits[:6] + beacons[:3], "first")
    stage_and_register(engine, archive, hits[6:] + beacons[3:], "second")
    reader = DuckDBRawEventReader(root, engine)
    window = (hour_start(HOUR), hour_start(HOUR + 1))
    expected = [row["event_id"] for row in as_rows(hits) if row["imp_type"] == 9]

    def read() -> list[str]:
        batches = reader.read(*window, imp_type=9, columns=["event_id"], batch_rows=4)
        return [event_id for batch in batches for event_id in batch.column(0).to_pylist()]

    assert read() == expected  # two files: through DuckDB
    assert archive.compact(engine, closed_before_hour=hour_start(HOUR + 1)) == 2
    assert read() == expected  # one sorted file: read straight
