"""Carrying raw events over from the legacy ``events`` table into the archive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader
from adtrack.adapters.raw_events.legacy_events import carry_over_legacy_events
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.adapters.sql import tables as t
from adtrack.adapters.sql.db import make_engine
from adtrack.cli.main import app
from adtrack.reporting.feed_stream import stream_feed
from adtrack.reporting.feeds import parse_feed_request
from adtrack.services.ports import RawFile
from tests.support.raw_events import archived_count, archived_events, manifest_paths
from tests.support.reporting import TRACKERS, RawEvent, load_events, migrated_engine

DAY = datetime(2026, 3, 9, tzinfo=UTC)
NOW = DAY + timedelta(days=1, hours=12)


def legacy_events() -> list[RawEvent]:
    return [
        RawEvent(
            DAY + timedelta(hours=i % 3, minutes=i, microseconds=i),
            TRACKERS[i % len(TRACKERS)],
            1_000 * i,
            7 * i,
            i % 5 == 0,
            ancost_used=i % 2 == 0,
            cachebuster=f"cb,{i}" if i % 3 else None,
            user_agent=f'agent "{i % 4}"',
            referrer=f"https://Site{i % 6}.example/p?{i}" if i % 4 else None,
        )
        for i in range(30)
    ]


def insert_legacy(engine: Engine, events: Sequence[RawEvent]) -> None:
    with engine.begin() as conn:
        conn.execute(t.events.insert(), [ev.row(f"ev-{i:09d}") for i, ev in enumerate(events)])


def legacy_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.events)).scalar_one())


def feeds(engine: Engine, root: Path) -> list[bytes]:
    reader = DuckDBRawEventReader(root, engine)
    return [
        b"".join(
            stream_feed(
                reader,
                parse_feed_request(kind, "2026-03-09", "2026-03-10", retention_days=30, now=NOW),
                fmt,
            )
        )
        for kind in ("click", "impression")
        for fmt in ("csv", "jsonl")
    ]


def test_legacy_rows_move_into_the_archive_once(engine: Engine, tmp_path: Path) -> None:
    events = legacy_events()
    insert_legacy(engine, events)
    root = tmp_path / "raw-events"
    archive = ParquetRawEventArchive(root)

    assert carry_over_legacy_events(engine, archive, chunk_rows=7) == len(events)
    assert legacy_count(engine) == 0
    assert archived_count(engine, root) == len(events)
    moved = archived_events(engine, root)
    paths = manifest_paths(engine)
    contents = {path: (root / path).read_bytes() for path in paths}
    carried_feeds = feeds(engine, root)

    # Run again: nothing to move, nothing changes.
    assert carry_over_legacy_events(engine, archive, chunk_rows=7) == 0
    assert manifest_paths(engine) == paths
    assert {path: (root / path).read_bytes() for path in paths} == contents

    # The same events archived directly give the same rows and the same feeds.
    with engine.begin() as conn:
        conn.execute(t.raw_event_files.delete())
    direct = tmp_path / "direct"
    load_events(engine, events, direct)
    assert archived_events(engine, direct) == moved
    assert feeds(engine, direct) == carried_feeds
    assert all(len(feed) > 300 for feed in carried_feeds)


class CrashingArchive:
    """The archive, failing after staging its ``crash_at``-th chunk (as a process killed
    between writing a chunk's files and committing it would)."""

    def __init__(self, archive: ParquetRawEventArchive, crash_at: int) -> None:
        self.archive = archive
        self.crash_at = crash_at
        self.staged = 0

    def stage(self, events: pa.Table, batch_key: str) -> list[RawFile]:
        files = self.archive.stage(events, batch_key)
        self.staged += 1
        if self.staged == self.crash_at:
            raise OSError("killed")
        return files


def test_an_interrupted_carry_over_resumes_without_duplicates(
    engine: Engine, tmp_path: Path
) -> None:
    events = legacy_events()
    insert_legacy(engine, events)
    root = tmp_path / "raw-events"
    archive = ParquetRawEventArchive(root)
    with pytest.raises(OSError, match="killed"):
        carry_over_legacy_events(engine, CrashingArchive(archive, crash_at=2), chunk_rows=10)
    assert legacy_count(engine) == 20
    assert archived_count(engine, root) == 10

    assert carry_over_legacy_events(engine, archive, chunk_rows=10) == 20
    assert legacy_count(engine) == 0
    assert archived_count(engine, root) == len(events)
    # The interrupted chunk's files were written again under the same names and listed.
    on_disk = sorted(str(p.relative_to(root)) for p in root.glob("hour=*/*.parquet"))
    assert on_disk == manifest_paths(engine)


def test_events_archive_command(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        insert_legacy(engine, legacy_events())
    env = {
        "ADTRACK_DATA_DIR": str(tmp_path),
        "ADTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'reports.db'}",
        "ADTRACK_RAW_EVENTS_DIR": str(tmp_path / "archive"),
    }
    runner = CliRunner()
    first = runner.invoke(app, ["events", "archive", "--chunk-rows", "8"], env=env)
    assert first.exit_code == 0, first.output
    assert f"archived 30 raw events from the events table in {tmp_path / 'archive'}" in (
        first.output
    )
    again = runner.invoke(app, ["events", "archive"], env=env)
    assert again.exit_code == 0 and "archived 0 raw events" in again.output
    engine = make_engine(env["ADTRACK_DATABASE_URL"])
    try:
        assert legacy_count(engine) == 0
        assert archived_count(engine, tmp_path / "archive") == 30
    finally:
        engine.dispose()
