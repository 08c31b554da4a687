"""``adtrack events archive``: move the raw events still in the legacy ``events`` table into
the raw-event archive (``ADTRACK_RAW_EVENTS_DIR``). Safe to run again, or while the aggregator
runs (it does the same when it starts)."""

from __future__ import annotations

from typing import Annotated

import typer

from adtrack import bootstrap
from adtrack.adapters.raw_events.legacy_events import (
    CARRY_OVER_CHUNK_ROWS,
    carry_over_legacy_events,
)
from adtrack.cli.database import open_database

__all__ = ["register"]


def archive(
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows moved per transaction (and per file and hour).")
    ] = CARRY_OVER_CHUNK_ROWS,
) -> None:
    """Move raw events from the events table into the raw-event archive."""
    with open_database() as database:
        settings = database.settings
        moved = carry_over_legacy_events(
            database.engine, bootstrap.build_raw_event_archive(settings), chunk_rows=chunk_rows
        )
    typer.echo(f"archived {moved} raw events from the events table in {settings.raw_events_dir}")


def register(app: typer.Typer) -> None:
    events_app = typer.Typer(help="Raw events.", no_args_is_help=True)
    events_app.command("archive")(archive)
    app.add_typer(events_app, name="events")
