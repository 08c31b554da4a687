"""``adtrack report``, ``adtrack feed`` and ``adtrack retention`` from the command line.

- ``adtrack report --start 2026-03-01 --end 2026-03-08 --interval day --group-by line_item,imp_type
  --timezone Europe/Berlin`` prints a table (``--format csv|json`` for machines, ``-o FILE`` with
  ``--format xlsx``);
- ``adtrack feed clicks --start ... --end ...`` (and ``feed impressions``) streams the feed as
  CSV or JSON lines to stdout or ``-o FILE``;
- ``adtrack retention purge`` deletes raw events older than ``ADTRACK_RAW_EVENT_RETENTION_DAYS``
  and the conversion verdicts and order ids older than
  ``ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS``.

Refused input prints ``error: <field>: <message>`` and exits with code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from adtrack import bootstrap
from adtrack.cli.database import open_database
from adtrack.reporting import formats
from adtrack.reporting.feed_stream import stream_feed
from adtrack.reporting.feeds import FeedFormat, FeedKind
from adtrack.reporting.request import ReportParameters, parse_report_request
from adtrack.services.retention import purge_conversion_bookkeeping, purge_raw_events

__all__ = ["register"]


def report(
    start: Annotated[str | None, typer.Option(help="Date or datetime (report timezone).")] = None,
    end: Annotated[str | None, typer.Option(help="Exclusive end: date or datetime.")] = None,
    range_: Annotated[
        str | None,
        typer.Option("--range", help="Instead of start/end: yesterday, last_7_days, ..."),
    ] = None,
    interval: Annotated[str, typer.Option(help="hour, day, month or cumulative.")] = "day",
    group_by: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: imp_type, advertiser, line_item, conversion_pixel, ..."
        ),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA name (default: ADTRACK_TIMEZONE).")
    ] = None,
    metrics: Annotated[str | None, typer.Option(help="Comma-separated metrics.")] = None,
    advertiser_id: Annotated[str | None, typer.Option(help="Filter: ids, comma-separated.")] = None,
    line_item_id: Annotated[str | None, typer.Option(help="Filter: ids.")] = None,
    publisher_id: Annotated[str | None, typer.Option(help="Filter: ids.")] = None,
    placement_id: Annotated[str | None, typer.Option(help="Filter: ids.")] = None,
    payment_rule_id: Annotated[str | None, typer.Option(help="Filter: ids.")] = None,
    tracker_id: Annotated[str | None, typer.Option(help="Filter: ids.")] = None,
    conversion_pixel_id: Annotated[
        str | None,
        typer.Option(
            "--conversion-pixel-id",
            "--conversion-pixel",
            help="Filter: conversion pixel ids (the conversion metrics only, as when grouped "
            "by conversion_pixel).",
        ),
    ] = None,
    imp_type: Annotated[str | None, typer.Option(help="Filter: 9 and/or 10.")] = None,
    country: Annotated[
        str | None, typer.Option(help="Filter: country codes (US,FR), or Unknown.")
    ] = None,
    device_type: Annotated[
        str | None, typer.Option(help="Filter: desktop, mobile, tablet, ctv, other, Unknown.")
    ] = None,
    os: Annotated[str | None, typer.Option(help="Filter: OS families (iOS,Windows).")] = None,
    browser: Annotated[
        str | None, typer.Option(help="Filter: browser families (Chrome,Firefox).")
    ] = None,
    format: Annotated[str, typer.Option(help="table, csv, json or xlsx.")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Tracked impressions, clicks, cost and revenue: the network report."""
    if format not in ("table", "csv", "json", "xlsx"):
        typer.echo("error: format: must be table, csv, json or xlsx", err=True)
        raise typer.Exit(code=1)
    if format == "xlsx" and output is None:
        typer.echo("error: output: --format xlsx needs --output FILE", err=True)
        raise typer.Exit(code=1)
    with open_database() as database:
        request = parse_report_request(
            ReportParameters(
                start=start,
                end=end,
                range=range_,
                interval=interval,
                group_by=group_by,
                timezone=timezone,
                metrics=metrics,
                advertiser_id=advertiser_id,
                line_item_id=line_item_id,
                publisher_id=publisher_id,
                placement_id=placement_id,
                payment_rule_id=payment_rule_id,
                tracker_id=tracker_id,
                conversion_pixel_id=conversion_pixel_id,
                country=country,
                device_type=device_type,
                os=os,
                browser=browser,
                imp_type=imp_type,
            ),
            default_timezone=database.settings.timezone,
        )
        result = bootstrap.build_report_engine(database.engine).run(request)
    data: bytes
    if format == "xlsx":
        data = formats.to_xlsx(result)
    elif format == "csv":
        data = formats.to_csv(result).encode()
    elif format == "json":
        data = formats.to_json(result) + b"\n"
    else:
        data = formats.to_table(result).encode()
    if output is not None:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _feed_command(kind: FeedKind) -> Callable[..., None]:
    def feed(
        start: Annotated[str, typer.Option(help="Date or datetime.")],
        end: Annotated[str, typer.Option(help="Exclusive; at most 24 hours after start.")],
        timezone: Annotated[
            str | None,
            typer.Option(help="Zone of times without an offset (default: ADTRACK_TIMEZONE)."),
        ] = None,
        format: Annotated[str, typer.Option(help="csv or jsonl.")] = "csv",
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write to this file.")
        ] = None,
    ) -> None:
        if format not in ("csv", "jsonl"):
            typer.echo("error: format: must be csv or jsonl", err=True)
            raise typer.Exit(code=1)
        with open_database() as database:
            rules = bootstrap.build_feed_rules(database.settings)
            request = rules.request(kind, start, end, timezone)
            sink = output.open("wb") if output is not None else sys.stdout.buffer
            try:
                reader = bootstrap.build_raw_event_reader(database.settings, database.engine)
                for chunk in stream_feed(reader, request, FeedFormat(format)):
                    sink.write(chunk)
            finally:
                if output is not None:
                    sink.close()
                else:
                    sys.stdout.flush()

    feed.__doc__ = f"One row per {kind.value} (a window of at most 24 hours)."
    return feed


def purge() -> None:
    """Delete raw events and conversion verdicts older than their retention (rollups are
    kept)."""
    with open_database() as database:
        settings = database.settings
        retention = bootstrap.build_raw_event_retention(settings, database.engine)
        deleted = purge_raw_events(retention, retention_days=settings.raw_event_retention_days)
        bookkeeping = bootstrap.build_conversion_bookkeeping_retention(settings, database.engine)
        verdicts = purge_conversion_bookkeeping(
            bookkeeping, retention_days=settings.conversion_dedup_retention_days
        )
    typer.echo(f"deleted {deleted} raw events older than {settings.raw_event_retention_days} days")
    typer.echo(
        f"deleted {verdicts} conversion verdicts (and the order ids they counted) older than "
        f"{settings.conversion_dedup_retention_days} days"
    )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    feed_app = typer.Typer(help="Log-level feeds (one row per event).", no_args_is_help=True)
    feed_app.command("clicks")(_feed_command(FeedKind.CLICK))
    feed_app.command("impressions")(_feed_command(FeedKind.IMPRESSION))
    feed_app.command("conversions")(_feed_command(FeedKind.CONVERSION))
    app.add_typer(feed_app, name="feed")
    retention_app = typer.Typer(
        help="Retention: raw events, conversion bookkeeping.", no_args_is_help=True
    )
    retention_app.command("purge")(purge)
    app.add_typer(retention_app, name="retention")
