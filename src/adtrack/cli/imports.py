"""``adtrack import ...``: bringing a catalogue and its history over from another platform.

This module defines the group (``import_app``); each kind of import adds its commands to it.
"""

from __future__ import annotations

import typer

__all__ = ["import_app", "register"]

import_app = typer.Typer(
    help="Import catalogues and history exported from Microsoft Invest/Xandr.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
