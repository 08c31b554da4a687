"""``adtrack events archive``: move the raw events still in the legacy ``events`` table into
the raw-event archive (``ADTRACK_RAW_EVENTS_DIR``). Safe to run again, or while the aggregator
runs (it does the same when it starts)."""

from __future__ import annotations

from typing import Annotated

import typer

from adtrack.adapters.raw_events.legacy_events import (
    CARRY_OVER_CHUNK_ROWS,
    carry_over_legacy_events,
)
from adtrack.adapters.raw_events.parquet_archive import ParquetRawEventArchive
from adtrack.adapters.sql import db
from adtrack.config import Settings

__all__ = ["register"]


def archive(
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows moved per transaction (and per file and hour).")
    ] = CARRY_OVER_CHUNK_ROWS,
) -> None:
    """Move raw events from the events table into the raw-event archive."""
    settings = Settings.from_env()
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    try:
        moved = carry_over_legacy_events(
            engine, ParquetRawEventArchive(settings.raw_events_dir), chunk_rows=chunk_rows
        )
    finally:
        engine.dispose()
    typer.echo(f"archived {moved} raw events from the events table in {settings.raw_events_dir}")


def register(app: typer.Typer) -> None:
    events_app = typer.Typer(help="Raw events.", no_args_is_help=True)
    events_app.command("archive")(archive)
    app.add_typer(events_app, name="events")
