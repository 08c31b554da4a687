"""Engine creation and schema migrations for the config and reporting store."""

from __future__ import annotations

import errno
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from adtrack.adapters.private_files import make_private_dir, touch_private_file

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: object) -> Engine:
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
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
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


# SQLite primary result codes (an extended code keeps the primary one in its low byte).
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_DISK_FULL = "the database's disk is full; the change was not saved (try again later)"
_DISK_ERROR = "the database cannot write to its disk now; the change was not saved"
_DB_RESOURCES = "the database is out of resources; the change was not saved (try again later)"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, the DB-API error SQLAlchemy wraps (``.orig``), and their causes."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 16:
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None]
        todo += [current.__cause__, current.__context__]
    return seen


def storage_unavailable(exc: BaseException) -> str | None:
    """Why the store cannot take writes, when ``exc`` says its disk is full or failing; else
    None. Covers SQLite (``SQLITE_FULL``: "database or disk is full", ``SQLITE_IOERR``),
    PostgreSQL (SQLSTATE class 53, e.g. 53100 ``disk_full``; 58030 ``io_error``) and the
    operating system's ``ENOSPC``/``EDQUOT``/``EIO``."""
    for cause in _causes(exc):
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(code, int):
            if code & 0xFF == _SQLITE_FULL:
                return _DISK_FULL
            if code & 0xFF == _SQLITE_IOERR:
                return _DISK_ERROR
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str):
            if sqlstate == "53100":
                return _DISK_FULL
            if sqlstate.startswith("53"):
                return _DB_RESOURCES
            if sqlstate == "58030":
                return _DISK_ERROR
        if isinstance(cause, OSError) and not isinstance(cause, ConnectionError):
            if cause.errno in (errno.ENOSPC, errno.EDQUOT):
                return _DISK_FULL
            if cause.errno == errno.EIO:
                return _DISK_ERROR
    return None
