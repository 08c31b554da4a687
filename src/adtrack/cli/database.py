"""What every command that touches the database shares: open it, migrated to the latest schema
(so commands work on a fresh data directory), and turn a refusal into one line and exit code 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from sqlalchemy import Engine

from adtrack import bootstrap
from adtrack.config import Settings
from adtrack.domain.errors import DomainError

__all__ = ["OpenDatabase", "fail", "open_database", "table"]


@dataclass(frozen=True)
class OpenDatabase:
    settings: Settings
    engine: Engine


def fail(message: str) -> typer.Exit:
    """``error: <message>`` on stderr; raise the returned ``Exit`` (code 1)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@contextmanager
def open_database() -> Iterator[OpenDatabase]:
    """The configured database (settings from the environment), migrated; a ``DomainError``
    inside becomes ``error: <field>: <message>`` and exit code 1. The engine is disposed of
    on leaving."""
    settings = Settings.from_env()
    bootstrap.migrate(settings)
    engine = bootstrap.open_engine(settings)
    try:
        yield OpenDatabase(settings, engine)
    except DomainError as exc:
        raise fail(f"{exc.field}: {exc.message}") from None
    finally:
        engine.dispose()


def table(rows: list[list[str]], header: list[str]) -> None:
    """Print ``rows`` under ``header`` in aligned columns."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
