"""Fixtures of the raw-event archive tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.reporting import BACKENDS, migrated_engine


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database with the small test catalogue, once on SQLite and once on PostgreSQL."""
    with migrated_engine(request.param, tmp_path) as eng:
        yield eng
