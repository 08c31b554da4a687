"""Alembic environment: migrations run against the URL set by ``adtrack.adapters.sql.db``."""

from __future__ import annotations

from alembic import context

from adtrack.adapters.sql.db import make_engine
from adtrack.adapters.sql.tables import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
