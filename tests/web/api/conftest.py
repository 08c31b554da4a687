"""Fixtures of the management API tests. Modules that need another database (PostgreSQL, one
per module, the export delivery) define their own ``api``, which overrides this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_fixtures import ApiTestbed, make_testbed


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    """The API on a fresh SQLite file, with one user and token per role."""
    yield from make_testbed(sqlite_url, tmp_path)
