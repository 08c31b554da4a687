"""``adtrack import ...``: bringing a catalogue and its history over from another platform.

This module defines the group (``import_app``) and the catalogue import of the original
platform's API dumps, ``adtrack import xandr PATH [--dry-run]``; other imports add their
commands to the group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adtrack import bootstrap
from adtrack.cli.database import fail, open_database
from adtrack.services.exact_json import dumps
from adtrack.services.xandr.catalogue_import import ImportRefused, ImportReport
from adtrack.services.xandr.dump_files import read_path

__all__ = ["import_app", "register"]

import_app = typer.Typer(
    help="Import catalogues and history exported from Microsoft Invest/Xandr.",
    no_args_is_help=True,
)

# Objects listed one per line (beyond the counts) before "... and N more".
_SHOWN = 50


def _print_report(report: ImportReport) -> None:
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    counts = report.counts()
    for kind, actions in counts.items():
        summary = ", ".join(f"{n} {action}" for action, n in actions.items() if n)
        typer.echo(f"{kind}: {summary}")
    noteworthy = [
        e for e in report.entries if e.action == "refused" or e.notes or e.id_kept is False
    ]
    for entry in noteworthy[:_SHOWN]:
        where = f"{entry.source}: {entry.position} ({entry.kind.value} {entry.original_id})"
        if entry.action == "refused":
            typer.echo(f"refused  {where}: {entry.refused_field}: {entry.refusal}")
            continue
        if entry.id_kept is False:
            typer.echo(f"new id   {where}: id {entry.original_id} is taken, created as {entry.id}")
        for note in entry.notes:
            typer.echo(f"note     {where}: {note.field}: {note.reason}")
    if len(noteworthy) > _SHOWN:
        typer.echo(f"... and {len(noteworthy) - _SHOWN} more objects with notes (--json)")
    if report.dry_run:
        typer.echo("dry run: nothing was written")


@import_app.command("xandr")
def import_xandr(
    path: Annotated[
        Path,
        typer.Argument(
            help="A JSON response of the platform's API, a zip of them, or a folder of them."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be imported; write nothing.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report (every object) as JSON.")
    ] = False,
) -> None:
    """Import a catalogue dump of Microsoft Invest/Xandr (advertisers, line items, publishers,
    placements, payment rules, impression and click trackers), keeping ids where free. All or
    nothing; running it again changes nothing, a newer dump updates what changed."""
    with open_database() as database:
        services = bootstrap.bootstrap(database.settings, engine=database.engine)
        dump = read_path(path, bootstrap.dump_limits(database.settings))
        try:
            report = services.xandr_import.run(dump, dry_run=dry_run)
        except ImportRefused as refused:
            if as_json:
                typer.echo(dumps(refused.report.to_json()).decode())
            else:
                _print_report(refused.report)
            raise fail(f"{refused.field}: {refused.message}") from None
    if as_json:
        typer.echo(dumps(report.to_json()).decode())
    else:
        _print_report(report)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
