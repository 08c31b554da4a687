"""``adtrack users ...`` and ``adtrack tokens create``: the users of the management API."""

from __future__ import annotations

from typing import Annotated

import typer

from adtrack import bootstrap
from adtrack.cli.database import open_database, table
from adtrack.domain.model import Role

__all__ = ["register"]

users_app = typer.Typer(help="Users of the management API.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)


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
    with open_database() as database:
        users = bootstrap.build_users(database.engine)
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
    with open_database() as database:
        users = bootstrap.build_users(database.engine).list_users()
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
    table(rows, ["id", "email", "role", "state", "created_at"])


@users_app.command("revoke-sessions")
def users_revoke_sessions(
    email: Annotated[str, typer.Option(help="Whose console sessions to end.")],
) -> None:
    """Sign a user out of the console everywhere (their API tokens stay valid)."""
    with open_database() as database:
        users = bootstrap.build_users(database.engine)
        user = users.get_user_by_email(email)
        ended = users.revoke_sessions(user.id)
    typer.echo(f"ended {ended} console sessions of {user.email}")


@users_app.command("unlock")
def users_unlock(
    email: Annotated[str, typer.Option(help="The account locked by failed sign-ins.")],
) -> None:
    """Lift a sign-in lockout of an account (after too many failed sign-ins) at once."""
    with open_database() as database:
        bootstrap.build_sign_in_throttle(database.settings, database.engine).unlock(email)
    typer.echo(f"unlocked {email.strip().lower()}")


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option(help="Whose token.")],
    name: Annotated[str | None, typer.Option(help="A label for the token.")] = None,
) -> None:
    """Create another API token for a user. The token is the last line printed."""
    with open_database() as database:
        issued = bootstrap.build_users(database.engine).create_token_for_email(email, name)
    typer.echo(f"created token {issued.token.id} for {email.strip().lower()}")
    typer.echo(issued.secret)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
