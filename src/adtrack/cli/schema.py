"""``adtrack db upgrade``: the database schema (opening the database for the other commands is
``cli/database.py``)."""

from __future__ import annotations

import typer

from adtrack import bootstrap
from adtrack.config import Settings

__all__ = ["register"]

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations (serve does this on start too)."""
    settings = Settings.from_env()
    bootstrap.migrate(settings)
    typer.echo(f"database at revision {bootstrap.schema_revision(settings)}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
