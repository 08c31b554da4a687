"""Raw events in the archive, for tests: seed them (as the aggregator would: files staged,
then listed in the manifest) and read back what is archived (through the manifest, with
DuckDB)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from adtrack.adapters.raw_events.duckdb_reader import DuckDBRawEventReader
from adtrack.adapters.raw_events.manifest import register_files
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.adapters.sql import tables as t
from adtrack.domain.events import Event
from adtrack.services.ports import RawFile
from adtrack.services.raw_event_columns import events_to_table

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Far enough apart to hold every event a test stores.
_EARLIEST = _EPOCH
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def seed_raw_events(
    engine: Engine, root: Path, events: Sequence[Event], batch_key: str = "seed"
) -> list[RawFile]:
    """Archive ``events`` under ``root`` and list their files in the manifest, the way a
    committed aggregator batch does."""
    files = ParquetRawEventArchive(root).stage(events_to_table(events), batch_key)
    with engine.begin() as conn:
        register_files(conn, files)
    return files


def archived_events(
    engine: Engine,
    root: Path,
    start: datetime = _EARLIEST,
    end: datetime = _LATEST,
    imp_type: int | None = None,
) -> list[dict[str, Any]]:
    """The committed raw events (every column, the times ``ts`` and ``source_ts`` as epoch
    microseconds like :class:`Event`), in ``(ts, event_id)`` order."""
    rows: list[dict[str, Any]] = []
    for batch in DuckDBRawEventReader(root, engine).read(start, end, imp_type=imp_type):
        for row in batch.to_pylist():
            row["ts"] = (row["ts"] - _EPOCH) // timedelta(microseconds=1)
            if row.get("source_ts") is not None:
                row["source_ts"] = (row["source_ts"] - _EPOCH) // timedelta(microseconds=1)
            rows.append(row)
    return rows


def archived_values(engine: Engine, root: Path, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """``columns`` of every committed raw event, in ``(ts, event_id)`` order."""
    rows: list[tuple[Any, ...]] = []
    for batch in DuckDBRawEventReader(root, engine).read(_EARLIEST, _LATEST, columns=columns):
        rows.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
    return rows


def listed_count(engine: Engine) -> int:
    """How many raw events the manifest lists (what is committed)."""
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.coalesce(func.sum(t.raw_event_files.c.rows), 0))).scalar_one()
        )


def archived_count(engine: Engine, root: Path) -> int:
    """How many raw events the archive holds: the manifest's count, checked against the
    files' own."""
    listed = listed_count(engine)
    stored = len(archived_values(engine, root, ["event_id"]))
    assert stored == listed, f"the manifest lists {listed} raw events, the files hold {stored}"
    return listed


def manifest_paths(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(t.raw_event_files.c.path).order_by(t.raw_event_files.c.path))
            .scalars()
            .all()
        )
