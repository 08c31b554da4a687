"""Fixtures of the compatible API's tests: the app with ``ADTRACK_COMPAT_API=xandr`` on SQLite
and on PostgreSQL, and a client that speaks to it as the platform's curl examples do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_fixtures import ApiTestbed, make_testbed

XANDR_ENV = {"ADTRACK_COMPAT_API": "xandr", "ADTRACK_COOKIE_SECURE": "0"}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiTestbed]:
    """The app with the compatible API on (both backends), one user and token per role."""
    yield from make_testbed(db_url, tmp_path, XANDR_ENV)
