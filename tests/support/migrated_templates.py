"""Migrated test databases made by copying a template.

Most tests start from an empty database brought to the newest revision (``db.upgrade``: twelve
migrations, about 0.2 s on SQLite and 0.5 s on PostgreSQL, for each of about a thousand test
databases). In a test process the first such upgrade, per backend, runs the migrations for real
into a template (a SQLite file; for PostgreSQL a scratch database, written out as SQL by
``pg_dump``); every later upgrade of an *empty* database to ``head`` copies the template
instead (the file; the SQL run in one transaction): the same tables, indexes, data and
``alembic_version``, the migrations' own output. Anything else (a revision other than ``head``,
a database that already has tables, a server other than the tests') runs Alembic as it is, so
``tests/adapters/sql/test_migrations.py`` still steps through the migrations one by one, and
``adtrack serve`` processes run their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import alembic.command
import psycopg
from sqlalchemy.engine import make_url

from tests.support import postgres

__all__ = ["install", "uninstall"]

_real_upgrade = alembic.command.upgrade
# backend -> template: SQLite's a migrated file's path, PostgreSQL's the SQL of a migrated database
_templates: dict[str, str] = {}


def install() -> None:
    """Copy templates for this process's upgrades to ``head`` from now on."""
    alembic.command.upgrade = _upgrade


def uninstall() -> None:
    """Run Alembic for every upgrade again, and forget the templates."""
    alembic.command.upgrade = _real_upgrade
    sqlite_template = _templates.pop("sqlite", None)
    if sqlite_template is not None:
        shutil.rmtree(Path(sqlite_template).parent, ignore_errors=True)
    _templates.pop("postgresql", None)


def _upgrade(config: Any, revision: str, sql: bool = False, tag: str | None = None) -> None:
    url = config.get_main_option("sqlalchemy.url")
    if revision == "head" and not sql and tag is None and url:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite" and _copy_sqlite(parsed.database):
            return
        if backend == "postgresql" and _copy_postgres(parsed.database, url):
            return
    _real_upgrade(config, revision, sql=sql, tag=tag)


def _copy_sqlite(database: str | None) -> bool:
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    target = Path(database)
    if not target.exists() or target.stat().st_size:
        return False  # not the empty file db.upgrade creates: a database with content
    template = _templates.get("sqlite")
    if template is None:
        path = Path(tempfile.mkdtemp(prefix="adtrack-template-")) / "template.db"
        _real_upgrade(_config_for(f"sqlite:///{path}"), "head")
        template = _templates["sqlite"] = str(path)
    # (the migrations' engine is disposed: its last connection checkpointed the WAL into the
    # file, so the file alone is the database; copied into the file db.upgrade made, keeping
    # that file's private mode)
    shutil.copyfile(template, target)
    return True


def _copy_postgres(name: str | None, url: str) -> bool:
    if (
        not name
        or postgres.database_url(name) != url
        or not name.startswith(postgres.DATABASE_PREFIX)
    ):
        return False
    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(False)
    ) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        if tables is None or tables[0]:
            return False
        script = _templates.get("postgresql")
        if script is None:
            script = _templates["postgresql"] = _migrated_postgres_script()
        conn.execute(script)  # one transaction, committed when the block ends
    return True


def _migrated_postgres_script() -> str:
    """The migrations' output as one SQL script: Alembic run for real into a scratch database,
    which ``pg_dump`` then writes out (schema and rows) before it is dropped. Running the script
    takes half the time of copying a template database (CREATE DATABASE ... TEMPLATE writes
    every page of the copy through the WAL), and the test's empty database is kept."""
    name = f"{postgres.DATABASE_PREFIX}{os.getpid()}_template"
    postgres.drop_database(name)
    url = make_url(postgres.create_database(name))
    try:
        _real_upgrade(_config_for(url.render_as_string(False)), "head")
        dump = subprocess.run(
            [
                "pg_dump",
                f"--host={url.host or '127.0.0.1'}",
                f"--port={url.port or 5432}",
                f"--username={url.username or 'postgres'}",
                "--no-owner",
                "--no-privileges",
                "--inserts",  # rows as INSERTs (COPY ... FROM stdin is no statement)
                name,
            ],
            env={**os.environ, "PGPASSWORD": url.password or ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        postgres.drop_database(name)
    # without pg_dump's psql meta-commands (\restrict ...), which are no SQL
    return "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))


def _config_for(url: str) -> Any:
    from adtrack.adapters.sql.db import alembic_config

    return alembic_config(url)
