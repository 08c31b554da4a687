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
    imports,
    report,
    scaleout,
    schema,
    serve,
    users,
)

__all__ = ["app"]

app = typer.Typer(
    name="adtrack",
    help="adtrack: a self-hosted impression-tracker and click-tracker server.",
    no_args_is_help=True,
    add_completion=False,
)

for group in (serve, schema, users, catalogue, events, export, report, scaleout, imports):
    group.register(app)

if __name__ == "__main__":  # pragma: no cover - the console script calls ``app`` directly
    app(prog_name="adtrack")
