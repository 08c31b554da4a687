"""Catalogue commands: ``adtrack <resource> list|create``, thin over the service, JSON like the
API (both are generated from ``services/catalogue_resources.py``); and a conversion pixel's
tags, ``adtrack conversion-pixels tags ID`` (``cli/export.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

import pydantic
import typer

from adtrack import bootstrap
from adtrack.cli.database import fail, open_database, table
from adtrack.cli.export import pixel_tags_command
from adtrack.domain.model import State
from adtrack.services import schemas
from adtrack.services.catalogue_resources import RESOURCES, KindResource
from adtrack.services.exact_json import dumps
from adtrack.services.json_fields import to_domain
from adtrack.services.validation_messages import validation_errors

__all__ = ["register"]


def _list_command(resource: KindResource) -> Callable[..., None]:
    def list_objects(
        q: Annotated[str | None, typer.Option(help="Search name or code, or an exact id.")] = None,
        state: Annotated[State | None, typer.Option(help="active or inactive.")] = None,
        offset: Annotated[int, typer.Option(min=0)] = 0,
        limit: Annotated[int, typer.Option(min=1, max=schemas.MAX_PAGE_SIZE)] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        with open_database() as database:
            catalogue = bootstrap.build_catalogue(database.settings, database.engine)
            page = resource.objects(catalogue).list(q=q, state=state, offset=offset, limit=limit)
        objects = [resource.to_json(entity) for entity in page.items]
        if as_json:
            for obj in objects:
                typer.echo(dumps(obj).decode())
            return
        table(
            [
                [str(o["id"]), str(o["state"]), str(o["name"]), str(o.get("code") or "")]
                for o in objects
            ],
            ["id", "state", "name", "code"],
        )
        typer.echo(f"({len(objects)} of {page.total})", err=True)

    list_objects.__doc__ = f"List {resource.label}s."
    return list_objects


def _create_command(resource: KindResource) -> Callable[..., None]:
    def create_object(
        data: Annotated[
            str, typer.Argument(help="The object as JSON, with the API's field names.")
        ],
    ) -> None:
        try:
            payload = json.loads(data, parse_float=Decimal, parse_constant=Decimal)
            body = resource.create_model.model_validate(payload)
        except json.JSONDecodeError as exc:
            raise fail(f"body: is not valid JSON ({exc.msg})") from None
        except pydantic.ValidationError as exc:
            _, detail = validation_errors(exc.errors())
            raise fail("; ".join(f"{d['field']}: {d['message']}" for d in detail)) from None
        with open_database() as database:
            catalogue = bootstrap.build_catalogue(database.settings, database.engine)
            entity = resource.objects(catalogue).create(
                to_domain(body.model_dump(exclude_unset=True))
            )
        typer.echo(dumps(resource.to_json(entity)).decode())

    create_object.__doc__ = (
        f"Create a {resource.label}, e.g. "
        f'adtrack {resource.path} create \'{{"name": "..."}}\'. Prints it as JSON.'
    )
    return create_object


def register(app: typer.Typer) -> None:
    for resource in RESOURCES:
        group = typer.Typer(help=f"{resource.label.capitalize()}s.", no_args_is_help=True)
        group.command("list")(_list_command(resource))
        group.command("create")(_create_command(resource))
        if resource.path == "conversion-pixels":
            group.command("tags")(pixel_tags_command)
        app.add_typer(group, name=resource.path)
