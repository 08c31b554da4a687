"""Fixtures of the console tests. Modules that need another start (no one signed in, the
sign-in throttle, seeded reports or exports) define their own ``bed``, which overrides this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adtrack.domain.model import Role
from tests.support.console import ConsoleBed, console_bed


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[ConsoleBed]:
    """The console on a fresh SQLite file, signed in as a trafficker."""
    with console_bed(tmp_path) as bed:
        bed.sign_in(bed.add_user(Role.TRAFFICKER))
        yield bed
