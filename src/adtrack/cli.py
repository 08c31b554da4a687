"""The ``adtrack`` command line.

Settings come from the environment (``ADTRACK_DATA_DIR``, ``ADTRACK_DATABASE_URL``...; see
``config.py``). Commands that touch the database bring its schema up to date first, so they
work on a fresh data directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Annotated

import pydantic
import typer
from sqlalchemy import Engine

from adtrack import cli_events, cli_export, cli_report, cli_scaleout
from adtrack.adapters.sql import db
from adtrack.adapters.sql.unit_of_work import SqlUnitOfWork
from adtrack.config import Settings
from adtrack.domain.errors import DomainError
from adtrack.domain.model import Role, State
from adtrack.services.catalogue import CatalogueService
from adtrack.web.api import schemas
from adtrack.web.api.catalogue import RESOURCES, Resource
from adtrack.web.api.errors import validation_errors
from adtrack.web.api.jsonio import dumps
from adtrack.worker_count import AUTO, resolve_workers

app = typer.Typer(
    name="adtrack",
    help="adtrack: a self-hosted impression-tracker and click-tracker server.",
    no_args_is_help=True,
    add_completion=False,
)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@contextmanager
def _database() -> Iterator[Engine]:
    """An engine on the configured database, migrated to the latest schema; domain errors
    become a one-line message and exit code 1."""
    settings = Settings.from_env()
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    try:
        yield engine
    except DomainError as exc:
        raise _fail(f"{exc.field}: {exc.message}") from None
    finally:
        engine.dispose()


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


# ---------------------------------------------------------------------------------------------
# serve, db
# ---------------------------------------------------------------------------------------------


@app.command()
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
    from adtrack.runtime import serve as run_server

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


db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations (serve does this on start too)."""
    settings = Settings.from_env()
    db.upgrade(settings.database_url)
    typer.echo(f"database at revision {db.current_revision(settings.database_url)}")


# ---------------------------------------------------------------------------------------------
# users, tokens
# ---------------------------------------------------------------------------------------------

users_app = typer.Typer(help="Users of the management API.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="The user's email (their login).")],
    role: Annotated[Role, typer.Option(help="admin, trafficker or reporter.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="At least 8 characters, hard to guess (zxcvbn score 3+); generated and "
            "printed if omitted."
        ),
    ] = None,
) -> None:
    """Create a user and an API token for them. The token is the last line printed."""
    from adtrack.runtime import user_service

    with _database() as engine:
        users = user_service(engine)
        created = users.create_user(email, role, password)
        issued = users.create_token(created.user.id, "cli")
    user = created.user
    typer.echo(f"created user {user.email} (id {user.id}, role {user.role.value})")
    if created.generated_password is not None:
        typer.echo(f"password: {created.generated_password}")
    typer.echo(issued.secret)


@users_app.command("list")
def users_list() -> None:
    """List the users."""
    from adtrack.runtime import user_service

    with _database() as engine:
        users = user_service(engine).list_users()
    rows = [
        [
            str(u.id),
            u.email,
            u.role.value,
            u.state.value,
            u.created_at.isoformat() if u.created_at else "",
        ]
        for u in users
    ]
    _table(rows, ["id", "email", "role", "state", "created_at"])


@users_app.command("revoke-sessions")
def users_revoke_sessions(
    email: Annotated[str, typer.Option(help="Whose console sessions to end.")],
) -> None:
    """Sign a user out of the console everywhere (their API tokens stay valid)."""
    from adtrack.runtime import user_service

    with _database() as engine:
        users = user_service(engine)
        user = users.get_user_by_email(email)
        ended = users.revoke_sessions(user.id)
    typer.echo(f"ended {ended} console sessions of {user.email}")


@users_app.command("unlock")
def users_unlock(
    email: Annotated[str, typer.Option(help="The account locked by failed sign-ins.")],
) -> None:
    """Lift a sign-in lockout of an account (after too many failed sign-ins) at once."""
    from adtrack.adapters.sql.users import SqlUserUnitOfWork
    from adtrack.services.sign_in_throttle import SignInThrottle

    with _database() as engine:
        SignInThrottle(partial(SqlUserUnitOfWork, engine)).unlock(email)
    typer.echo(f"unlocked {email.strip().lower()}")


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option(help="Whose token.")],
    name: Annotated[str | None, typer.Option(help="A label for the token.")] = None,
) -> None:
    """Create another API token for a user. The token is the last line printed."""
    from adtrack.runtime import user_service

    with _database() as engine:
        issued = user_service(engine).create_token_for_email(email, name)
    typer.echo(f"created token {issued.token.id} for {email.strip().lower()}")
    typer.echo(issued.secret)


# ---------------------------------------------------------------------------------------------
# Catalogue: `adtrack <resource> list|create`, thin over the service, JSON like the API
# ---------------------------------------------------------------------------------------------


def _catalogue(engine: Engine) -> CatalogueService:
    kept = Settings.from_env().catalogue_changes_kept
    return CatalogueService(partial(SqlUnitOfWork, engine, changes_kept=kept))


def _list_command(resource: Resource) -> Callable[..., None]:
    def list_objects(
        q: Annotated[str | None, typer.Option(help="Search name or code, or an exact id.")] = None,
        state: Annotated[State | None, typer.Option(help="active or inactive.")] = None,
        offset: Annotated[int, typer.Option(min=0)] = 0,
        limit: Annotated[int, typer.Option(min=1, max=schemas.MAX_PAGE_SIZE)] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        with _database() as engine:
            page = resource.operations.list(
                _catalogue(engine), q=q, state=state, offset=offset, limit=limit
            )
        objects = [resource.to_json(entity) for entity in page.items]
        if as_json:
            for obj in objects:
                typer.echo(dumps(obj).decode())
            return
        _table(
            [[str(o["id"]), o["state"], o["name"], o.get("code") or ""] for o in objects],
            ["id", "state", "name", "code"],
        )
        typer.echo(f"({len(objects)} of {page.total})", err=True)

    list_objects.__doc__ = f"List {resource.label}s."
    return list_objects


def _create_command(resource: Resource) -> Callable[..., None]:
    def create_object(
        data: Annotated[
            str, typer.Argument(help="The object as JSON, with the API's field names.")
        ],
    ) -> None:
        try:
            payload = json.loads(data, parse_float=Decimal, parse_constant=Decimal)
            body = resource.create_model.model_validate(payload)
        except json.JSONDecodeError as exc:
            raise _fail(f"body: is not valid JSON ({exc.msg})") from None
        except pydantic.ValidationError as exc:
            _, detail = validation_errors(exc.errors())
            raise _fail("; ".join(f"{d['field']}: {d['message']}" for d in detail)) from None
        with _database() as engine:
            entity = resource.operations.create(
                _catalogue(engine), schemas.to_domain(body.model_dump(exclude_unset=True))
            )
        typer.echo(dumps(resource.to_json(entity)).decode())

    create_object.__doc__ = (
        f"Create a {resource.label}, e.g. "
        f'adtrack {resource.path} create \'{{"name": "..."}}\'. Prints it as JSON.'
    )
    return create_object


def register_catalogue_commands(parent: typer.Typer) -> None:
    for resource in RESOURCES:
        group = typer.Typer(help=f"{resource.label.capitalize()}s.", no_args_is_help=True)
        group.command("list")(_list_command(resource))
        group.command("create")(_create_command(resource))
        parent.add_typer(group, name=resource.path)


register_catalogue_commands(app)

# ---------------------------------------------------------------------------------------------
# Commands of other parts of adtrack (each module registers its own group)
# ---------------------------------------------------------------------------------------------

cli_events.register(app)
cli_export.register(app)
cli_report.register(app)
cli_scaleout.register(app)

if __name__ == "__main__":  # pragma: no cover - the console script calls ``app`` directly
    app(prog_name="adtrack")
