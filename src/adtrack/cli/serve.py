"""``adtrack serve``: the whole server on one host (see ``adtrack.runtime.serve``)."""

from __future__ import annotations

from typing import Annotated

import typer

from adtrack.config import Settings
from adtrack.worker_count import AUTO, resolve_workers

__all__ = ["register"]


def serve(
    host: Annotated[str, typer.Option(help="Address of the API server.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the API server.")] = 8000,
    tracking_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port of the tracking endpoints (default: port+1)."),
    ] = None,
    workers: Annotated[
        str,
        typer.Option(
            help="Collector processes on the tracking port: a number, or 'auto' (every usable "
            "core but one, which the API and aggregator keep; at least 1)."
        ),
    ] = AUTO,
    single_process: Annotated[
        bool,
        typer.Option(
            "--single-process",
            help="Run the collector and the aggregator in the API's process (smallest hosts; "
            "sign-in, reports and exports then share its event loop). Not with a --workers "
            "number above 1.",
        ),
    ] = False,
) -> None:
    """Run the server (API and tracking) until interrupted.

    The collector runs in processes of its own (--workers of them, by default one per core
    but one), the aggregator and the retention purge in one more (at a lower CPU priority),
    the API/console and the scheduled reports in this one. Migrates the database first. On an
    empty database, creates an admin and prints its password and API token, once.
    """
    from adtrack.runtime.serve import serve as run_server

    try:
        collectors = 1 if single_process and workers == AUTO else resolve_workers(workers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--workers") from None
    if single_process and collectors > 1:
        raise typer.BadParameter(
            "--single-process runs one collector in the API process; drop --workers",
            param_hint="--workers",
        )
    run_server(
        Settings.from_env(),
        host,
        port,
        port + 1 if tracking_port is None else tracking_port,
        workers=collectors,
        single_process=single_process,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
