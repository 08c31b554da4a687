"""Engine creation and schema migrations for the config and reporting store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from adtrack.adapters.private_files import make_private_dir, touch_private_file

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    The SQLite file (0600) and its folder (0700) are created if missing, so a fresh
    ``ADTRACK_DATA_DIR`` just works.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        _create_sqlite_file(sa_url.database)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(sa_url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(sa_url, **kwargs)


def _create_sqlite_file(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        make_private_dir(path.parent)
        touch_private_file(path)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (runs on every start; idempotent)."""
    if make_url(url).get_backend_name() == "sqlite":
        _create_sqlite_file(make_url(url).database)
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
