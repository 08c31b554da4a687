"""``adtrack collector`` and ``adtrack aggregator``: the parts of a scaled-out installation.

Collectors answer the tracking endpoints and write events to the event log; aggregators
consume the log into the reporting tables; ``adtrack serve`` keeps running the console and the
API. With ``ADTRACK_EVENT_LOG=nats://...`` and a PostgreSQL ``ADTRACK_DATABASE_URL`` each part
may run on its own hosts, any number of each (see ``docs/deploy.md``).
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from adtrack.config import Settings

__all__ = ["aggregator", "collector", "register"]


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("adtrack").setLevel(logging.INFO)


def collector(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8001,
    workers: Annotated[
        int, typer.Option(min=1, help="Collector processes sharing the port (SO_REUSEPORT).")
    ] = 1,
    trust_forwarded_for: Annotated[
        bool,
        typer.Option(
            help="Take the client IP from the last X-Forwarded-For entry "
            "(only behind a load balancer that sets it; ADTRACK_TRUST_FORWARDED_FOR=1 does too)."
        ),
    ] = False,
    reuse_port: Annotated[
        bool,
        typer.Option(help="Let other processes listen on the same port (one worker only)."),
    ] = False,
    writer_id: Annotated[
        str | None,
        typer.Option(help="Event-log writer id (local log only; one worker only)."),
    ] = None,
) -> None:
    """Run only the tracking endpoints (/imptr, /clktrb) until interrupted.

    Stateless apart from the tracker cache (loaded from the database, refreshed within about a
    second of a change): run any number behind a load balancer. Events go to the event log
    (ADTRACK_EVENT_LOG); when it cannot take them, requests are answered 503.
    """
    from adtrack.runtime.collectors import run_collectors

    _log_to_stderr()
    run_collectors(
        Settings.from_env(),
        host,
        port,
        workers=workers,
        trust_forwarded_for=trust_forwarded_for,
        reuse_port=reuse_port,
        writer_id=writer_id,
    )


def aggregator(
    consumer: Annotated[
        str, typer.Option(help="Name of this aggregator's consumers (in logs and JetStream).")
    ] = "aggregator",
) -> None:
    """Consume the event log into hourly rollups until interrupted.

    Several may run at once: each event is counted once (the log positions are committed with
    the rollups, by compare-and-set). Waits for the database when it is down, then catches up.
    """
    from adtrack.runtime.aggregator import run_aggregator

    _log_to_stderr()
    run_aggregator(Settings.from_env(), consumer=consumer)


def register(app: typer.Typer) -> None:
    """Add ``adtrack collector`` and ``adtrack aggregator`` to the CLI."""
    app.command("collector")(collector)
    app.command("aggregator")(aggregator)
