"""``adtrack import report-history`` (and ``report-history-list``, ``report-history-undo``):
the original platform's report history into adtrack's reports; ``adtrack import xandr-tags``:
trackers recovered from its exported tag files. On the ``import`` group.

Refused rows are printed one a line as ``line N: field: message`` on stderr, with exit code 1
(nothing imported unless ``--skip-refused``). ``--json`` prints the result as the API answers it.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from adtrack import bootstrap
from adtrack.cli.database import fail, open_database, table
from adtrack.cli.imports import import_app
from adtrack.services.xandr.report_history import (
    HistoryImportResult,
    ReportHistoryRefused,
    import_json,
)
from adtrack.services.xandr.tag_recovery import TagAssignment, TagRecoveryResult, taken_message

__all__ = ["register"]


def _who() -> str:
    try:
        return f"command line ({getpass.getuser()})"
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return "command line"


def _read(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise fail(f"{path}: no such file")
    if path.stat().st_size > max_bytes:
        raise fail(f"{path}: larger than {max_bytes} bytes (ADTRACK_REPORT_HISTORY_MAX_BYTES)")
    return path.read_bytes()


def _print_result(result: HistoryImportResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
        return
    verb = "would import" if result.dry_run else "imported"
    span = f"{result.first_day} .. {result.last_day}" if result.first_day else "no days"
    totals = result.as_json()["totals"]
    assert isinstance(totals, dict)
    typer.echo(
        f"{verb} {result.lines} rows (by {result.granularity}, {result.timezone}, {span}): "
        f"{totals['imps']} imps, {totals['clicks']} clicks, media cost "
        f"{totals['media_cost']}, booked revenue {totals['booked_revenue']}"
    )
    if result.imported is not None:
        typer.echo(
            f"import {result.imported.id} (undo: adtrack import report-history-undo "
            f"{result.imported.id})"
        )
    for refused in result.refused:
        typer.echo(f"line {refused.line}: {refused.field}: {refused.message}", err=True)


def report_history_command(
    path: Annotated[Path, typer.Argument(help="The network analytics report, as CSV")],
    timezone: Annotated[
        str, typer.Option("--timezone", help="The report's time zone (e.g. UTC, America/New_York)")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and show what would be added; write nothing")
    ] = False,
    skip_refused: Annotated[
        bool,
        typer.Option("--skip-refused", help="Import the good rows even if some are refused"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Import report history: the rows go into the reports as imported (no tracker)."""
    with open_database() as database:
        service = bootstrap.build_report_history(database.settings, database.engine)
        data = _read(path, service.max_bytes)
        try:
            result = service.import_csv(
                data,
                file_name=path.name,
                timezone=timezone,
                imported_by=_who(),
                dry_run=dry_run,
                skip_refused=skip_refused,
            )
        except ReportHistoryRefused as refused:
            _print_result(refused.result, as_json)
            raise fail(f"{refused.field}: {refused.message}") from None
        _print_result(result, as_json)
        if result.refused and dry_run:
            raise typer.Exit(code=1)


def report_history_list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON")] = False,
) -> None:
    """List the report history imports, newest first."""
    with open_database() as database:
        done = bootstrap.build_report_history(database.settings, database.engine).imports()
    if as_json:
        typer.echo(json.dumps([import_json(item) for item in done], indent=2))
        return
    rows = []
    for item in done:
        view = import_json(item)
        rows.append(
            [
                str(item.id),
                item.file_name,
                item.timezone,
                str(item.lines),
                str(view["first_hour"]),
                str(view["last_hour"]),
                str(item.totals.imps),
                str(item.totals.clicks),
                item.imported_by,
                str(view["created_at"]),
            ]
        )
    table(
        rows,
        ["id", "file", "timezone", "rows", "first hour", "last hour", "imps", "clicks", "by", "at"],
    )


def report_history_undo_command(
    import_id: Annotated[int, typer.Argument(help="The import's id (report-history-list)")],
) -> None:
    """Undo a report history import: its counts leave the reports."""
    with open_database() as database:
        done = bootstrap.build_report_history(database.settings, database.engine).undo(import_id)
    typer.echo(f"undone: import {done.id} ({done.file_name}, {done.lines} rows)")


def _tag_files(path: Path, max_bytes: int) -> list[tuple[str, bytes]]:
    """``path`` itself, or every file under the folder ``path``."""
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    elif path.is_file():
        paths = [path]
    else:
        raise fail(f"{path}: no such file or folder")
    total = sum(p.stat().st_size for p in paths)
    if total > max_bytes:
        raise fail(f"{path}: larger than {max_bytes} bytes (ADTRACK_TAG_FILE_MAX_BYTES)")
    return [(str(p.relative_to(path)) if path.is_dir() else p.name, p.read_bytes()) for p in paths]


def _print_tags(result: TagRecoveryResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
        return
    verb = "would create" if result.dry_run else "created"
    typer.echo(
        f"{verb} {len(result.to_create)} trackers; {len(result.unchanged)} already there; "
        f"{len(result.taken)} ids taken"
    )
    for c in result.to_create:
        kind = "javascript" if c.javascript else c.form
        typer.echo(f"  {c.tracker_type.value} {c.id} {c.name!r} ({kind}; {c.file} line {c.line})")
    for c, held in result.taken:
        typer.echo(f"{c.file} line {c.line}: {taken_message(c, held)}", err=True)
    for note in result.notes:
        typer.echo(f"{note.file} line {note.line}: {note.message}", err=True)


def xandr_tags_command(
    path: Annotated[Path, typer.Argument(help="A tag file, or a folder of them")],
    line_item: Annotated[int, typer.Option("--line-item", help="Line item id of the trackers")],
    publisher: Annotated[int, typer.Option("--publisher", help="Publisher id of the trackers")],
    placement: Annotated[int | None, typer.Option("--placement", help="Placement id")] = None,
    payment_rule: Annotated[
        int | None, typer.Option("--payment-rule", help="Payment rule id")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be created; write nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Recover trackers from exported tag files, keeping the ids their tags carry."""
    with open_database() as database:
        service = bootstrap.build_tag_recovery(
            database.settings,
            database.engine,
            bootstrap.build_catalogue(database.settings, database.engine),
        )
        files = _tag_files(path, service.max_bytes)
        result = service.recover(
            files, TagAssignment(line_item, publisher, placement, payment_rule), dry_run=dry_run
        )
    _print_tags(result, as_json)


def register(app: typer.Typer) -> None:
    """Adds the commands to the ``import`` group (which ``imports.register`` puts on ``app``)."""
    import_app.command("report-history")(report_history_command)
    import_app.command("report-history-list")(report_history_list_command)
    import_app.command("report-history-undo")(report_history_undo_command)
    import_app.command("xandr-tags")(xandr_tags_command)
