"""Throw-away databases on the local PostgreSQL server.

Every test that needs PostgreSQL gets a database of its own, named ``adtrack_t_<pid>_<random>``,
created on the server at :data:`SERVER_URL` and dropped (``WITH (FORCE)``, so connections a
test left open don't block it) when the test ends.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

# The server, as a SQLAlchemy URL without a database. Override with ADTRACK_TEST_POSTGRES_URL.
SERVER_URL = os.environ.get(
    "ADTRACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/"
)
DATABASE_PREFIX = "adtrack_t_"


def _server_url() -> URL:
    return make_url(SERVER_URL)


def database_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    return _server_url().set(database=name).render_as_string(hide_password=False)


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    url = _server_url()
    try:
        return psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not answering at {SERVER_URL} ({exc}). "
            "Run `make test` (or scripts/ensure_services.sh) to start it."
        ) from exc


def unique_database_name() -> str:
    return f"{DATABASE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"


def database_exists(name: str) -> bool:
    with admin_connection() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


def create_database(name: str) -> str:
    """Create database ``name`` and return its URL."""
    with admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name)


def drop_database(name: str) -> None:
    """Drop database ``name`` if it exists, closing any connection still open to it."""
    with admin_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def temporary_database() -> Iterator[str]:
    """A new empty database for the duration of the ``with`` block; yields its URL."""
    name = unique_database_name()
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)
