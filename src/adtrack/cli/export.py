"""``adtrack export``: trackers as tags from the command line.

Prints the tags (a text sheet) by default; ``--download txt|csv|xlsx`` with ``-o FILE`` writes a
tag sheet; ``--download tag-map`` writes the tag map, each tracker's old tag on the original
platform (``--old-host``, ``secure.adnxs.com`` by default) next to its new tag;
``--email ADDRESS`` (repeatable, up to 10) sends them through ``ADTRACK_SMTP_URL`` and waits for
the outcome (retrying temporary failures like the server's background worker does).
Warnings go to stderr. Exit code 1 on refused input or a failed email.

``adtrack conversion-pixels tags ID`` prints a conversion pixel's tags (the image and script of
the browser pixel, the server-side postback URL) and the placeholders to fill; ``--use-code``
names the pixel by its code, ``--json`` prints the API's answer
(``GET /api/v1/conversion-pixels/{id}/tags``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from adtrack import bootstrap
from adtrack.cli.database import fail, open_database
from adtrack.domain.conversion_tags import PLACEHOLDERS
from adtrack.domain.errors import ValidationError
from adtrack.domain.parsing import parse_id
from adtrack.services.exact_json import dumps
from adtrack.services.export_request import ExportRequest
from adtrack.services.ports import ExportStatus
from adtrack.services.tag_sheets import SheetKind, to_text

__all__ = ["pixel_tags_command", "register"]


def _id_list(value: str | None, option: str) -> list[int]:
    if not value:
        return []
    ids: list[int] = []
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        try:
            ids.append(parse_id(part, option))
        except ValidationError as exc:
            raise typer.BadParameter(f"{part!r} {exc.message}", param_hint=option) from None
    return ids


def export_command(
    impression_ids: Annotated[
        str | None, typer.Option("--impression-ids", help="Impression tracker ids: 1,2,3")
    ] = None,
    click_ids: Annotated[
        str | None, typer.Option("--click-ids", help="Click tracker ids: 4,5")
    ] = None,
    tag_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="javascript | pixel (impression trackers), url (both), anchor (click trackers). "
            "Default: pixel for impression trackers, url for click trackers.",
        ),
    ] = None,
    macros: Annotated[
        str | None,
        typer.Option("--macros", help="Placeholders to include: CACHEBUSTER,ANCOST,REDIRECT_URL"),
    ] = None,
    preset: Annotated[
        str, typer.Option("--preset", help="Macro syntax: generic | gam | xandr | cm360")
    ] = "generic",
    use_code: Annotated[
        bool, typer.Option("--use-code", help="Reference trackers by code= instead of id=")
    ] = False,
    secure: Annotated[
        bool, typer.Option("--secure", help="Always https, whatever ADTRACK_PUBLIC_URL says")
    ] = False,
    view_element: Annotated[
        str | None,
        typer.Option(
            "--view-element",
            help="JavaScript tags: the id of the element whose viewability they measure "
            "(default: the tag's parent element)",
        ),
    ] = None,
    download: Annotated[
        SheetKind | None,
        typer.Option(
            "--download",
            help="Write a tag sheet (txt | csv | xlsx) or the tag map (tag-map: a CSV of old "
            "tag -> new tag per tracker and format, every format unless --format is given)",
        ),
    ] = None,
    old_host: Annotated[
        str | None,
        typer.Option(
            "--old-host",
            help="With --download tag-map: the host of the old tags (default secure.adnxs.com)",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default: stdout)")
    ] = None,
    email: Annotated[
        list[str] | None,
        typer.Option("--email", help="Send the tags to this address (repeat, up to 10)"),
    ] = None,
) -> None:
    """Export impression and click trackers as tags (shown, saved as a sheet, or emailed)."""
    body: dict[str, object] = {
        "impression_tracker_ids": _id_list(impression_ids, "--impression-ids"),
        "click_tracker_ids": _id_list(click_ids, "--click-ids"),
        "format": tag_format,
        "macros": [m for m in (macros or "").replace(" ", "").split(",") if m],
        "preset": preset,
        "use_code": use_code,
        "secure": secure,
        "view_element": view_element,
        "delivery": "email" if email else "now",
        "emails": list(email or []),
    }
    if download is None and output is not None:
        suffix = output.suffix.lower().lstrip(".")
        download = SheetKind(suffix) if suffix in {k.value for k in SheetKind} else SheetKind.TXT
    if email and download is not None:
        raise fail("--download/-o and --email cannot be combined")
    if download is SheetKind.XLSX and output is None:
        raise fail("an XLSX sheet needs -o FILE")
    if old_host is not None and download is not SheetKind.TAG_MAP:
        raise fail("--old-host only applies to --download tag-map")

    with open_database() as database:
        catalogue = bootstrap.build_catalogue(database.settings, database.engine)
        service, delivery = bootstrap.build_exports(
            database.settings,
            database.engine,
            catalogue,
            bootstrap.build_mailer(database.settings),
        )
        request = ExportRequest.from_mapping(body)
        if email:
            if delivery is None:
                raise fail("delivery: email needs ADTRACK_SMTP_URL (smtp://user:pass@host:port)")
            queued = service.queue_email(request)
            for warning in queued.warnings:
                typer.echo(f"warning: {warning}", err=True)
            typer.echo(f"export {queued.record.id} queued for {', '.join(request.emails)}")
            final = delivery.deliver_now(queued.record.id, sleep=time.sleep)
            if final.status is ExportStatus.SENT:
                typer.echo(f"export {final.id} sent ({final.attempts} attempt(s))")
                return
            raise fail(f"export {final.id} failed: {final.error}")
        if download is None:
            result = service.build(request)
            _warn(result.warnings)
            typer.echo(to_text(result.rows), nl=False)
            return
        downloaded = service.download(request, download, old_host=old_host)
        _warn(downloaded.warnings)
        if output is None:
            sys.stdout.buffer.write(downloaded.sheet.data)
            sys.stdout.buffer.flush()
        else:
            output.write_bytes(downloaded.sheet.data)
            what = "tag map row(s)" if download is SheetKind.TAG_MAP else "tag(s)"
            typer.echo(f"wrote {downloaded.rows} {what} to {output}", err=True)


_PIXEL_TAG_LABELS = (
    ("image", "Image pixel (the conversion page)"),
    ("javascript", "JavaScript pixel (the conversion page)"),
    ("postback", "Server-side postback URL"),
)


def pixel_tags_command(
    pixel_id: Annotated[str, typer.Argument(metavar="ID", help="The conversion pixel's id.")],
    use_code: Annotated[
        bool, typer.Option("--use-code", help="Name the pixel by code= instead of id=")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON answer")] = False,
) -> None:
    """A conversion pixel's tags: image, script and server-side postback."""
    try:
        parsed_id = parse_id(pixel_id, "id")
    except ValidationError as exc:
        raise typer.BadParameter(f"{pixel_id!r} {exc.message}", param_hint="ID") from None
    with open_database() as database:
        catalogue = bootstrap.build_catalogue(database.settings, database.engine)
        service, _ = bootstrap.build_exports(database.settings, database.engine, catalogue, None)
        result = service.pixel_tags(parsed_id, use_code=use_code)
    _warn(result.warnings)
    if as_json:
        typer.echo(dumps(result.to_json()).decode())
        return
    tags = result.tags.as_json()
    lines = [f"Conversion pixel {result.pixel.id}: {result.pixel.name}", ""]
    for key, label in _PIXEL_TAG_LABELS:
        lines += [f"{label}:", tags[key], ""]
    lines.append("Replace each placeholder, or leave out the parameter that has none:")
    lines += [f"  {p.placeholder} ({p.parameter}): {p.meaning}" for p in PLACEHOLDERS]
    typer.echo("\n".join(lines))


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``adtrack export`` to the CLI."""
    app.command("export")(export_command)
