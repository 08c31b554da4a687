"""The ``adtrack`` command line (the console script's ``app``).

Settings come from the environment (``ADTRACK_DATA_DIR``, ``ADTRACK_DATABASE_URL``...; see
``config.py``). Commands that touch the database bring its schema up to date first, so they
work on a fresh data directory (``database.py``). Each group of commands lives in a module of
its own and registers itself here; the services they use come from ``adtrack.bootstrap``.
"""

from __future__ import annotations

import typer

from adtrack.cli import (
    catalogue,
    events,
    export,
    history_imports,
    imports,
    report,
    scaleout,
    schema,
    serve,
    users,
)
from adtrack.config import Settings, SettingsError

__all__ = ["app"]

app = typer.Typer(
    name="adtrack",
    help="adtrack: a self-hosted impression-tracker and click-tracker server.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _check_settings() -> None:
    # Before any command: a setting it could not use is named in one line (exit status 2, as
    # for a bad option), not in a traceback.
    try:
        Settings.from_env()
    except SettingsError as exc:
        typer.echo(f"adtrack: {exc}", err=True)
        raise typer.Exit(2) from None


for group in (serve, schema, users, catalogue, events, export, report, scaleout, imports):
    group.register(app)
# Commands on the `import` group.
history_imports.register(app)

if __name__ == "__main__":  # pragma: no cover - the console script calls ``app`` directly
    app(prog_name="adtrack")
